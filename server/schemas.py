"""Request and response shapes of the public API, as the OpenAPI document shows them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints

from models.events import MAX_ID_LENGTH, MAX_TEXT_LENGTH, Event, Identifier, JsonBlob

MAX_EXCLUDE = 200

# Query parameters several list endpoints share.
Limit = Annotated[int, Query(ge=1, le=100)]
Category = Annotated[str | None, Query(max_length=MAX_ID_LENGTH)]


class Placement(StrEnum):
    HOME = "home"
    PRODUCT = "product"
    CART = "cart"
    POST_PURCHASE = "post_purchase"
    EMAIL = "email"


class EventsBatch(BaseModel):
    events: list[Event] = Field(max_length=1000)


class EventsAccepted(BaseModel):
    accepted: int
    duplicates: int


class CatalogItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: Identifier
    title: Annotated[str, StringConstraints(max_length=MAX_TEXT_LENGTH)] | None = None
    category: Identifier | None = None
    price: float | None = Field(default=None, ge=0, le=1e7, allow_inf_nan=False)
    url: HttpUrl | None = None
    image_url: HttpUrl | None = None
    in_stock: bool | None = None
    tags: list[Identifier] | None = Field(default=None, max_length=50)
    attributes: JsonBlob = Field(default=None, max_length=50)


class ItemsUpsert(BaseModel):
    items: list[CatalogItem] = Field(min_length=1, max_length=1000)


class ItemsUpserted(BaseModel):
    upserted: int


class RecommendationQuery(BaseModel):
    """One recommendation request; the query string of GET and an entry of a batch."""

    visitor_id: Identifier | None = None
    placement: Placement = Placement.HOME
    item_id: Identifier | None = None
    limit: int = Field(default=10, ge=1, le=100)
    category: Identifier | None = None
    exclude: list[Identifier] = Field(default_factory=list, max_length=MAX_EXCLUDE)
    max_per_category: int | None = Field(
        default=None, ge=1, le=100, description="at most this many items of one category"
    )
    send_id: Identifier | None = Field(
        default=None, description="an email send: re-opens get the very same answer"
    )


class RecommendedItem(BaseModel):
    item_id: str
    score: float
    reason: str
    title: str | None = None
    category: str | None = None
    price: float | None = None
    url: str | None = None
    image_url: str | None = None


class ExperimentArm(BaseModel):
    name: str
    variant: str
    holdout: bool


class RecommendationResponse(BaseModel):
    recommendation_id: str = Field(
        description="send it back with rec_impression and rec_click events for attribution"
    )
    placement: str
    model_version: str
    strategy: str = Field(description="personal, similar, bought_together or trending")
    experiment: ExperimentArm | None = Field(
        default=None, description="the experiment variant this visitor is in, if any"
    )
    degraded: bool = Field(
        default=False,
        description="true while the state store is unreachable: the visitor's history "
        "was not used (bestsellers or similar items from the model in memory)",
    )
    items: list[RecommendedItem]


class BatchRequest(BaseModel):
    requests: list[RecommendationQuery] = Field(min_length=1, max_length=1000)
    distinct: bool = Field(
        default=False,
        description="the widgets of one page: never repeat an item for the same visitor",
    )


class BatchResponse(BaseModel):
    results: list[RecommendationResponse]


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. the index and fields of a bad event

    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error the API returns: a stable code and a message, never a traceback."""

    error: ErrorDetail


# Errors are JSON on every route, HTML ones included, so the media type is spelled out.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for status, description in (
        (400, "Malformed JSON"),
        (401, "Missing or unknown API key"),
        (403, "A public key on a secret route, or a link Encore did not sign"),
        (404, "Not found"),
        (409, "The offer cannot be redeemed for this order"),
        (413, "Body or batch too large"),
        (422, "Invalid input"),
        (429, "Rate limited: see Retry-After"),
        (503, "Redis or the model is unavailable: see Retry-After"),
    )
}
