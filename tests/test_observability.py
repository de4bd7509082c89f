"""/metrics in the Prometheus text format, counting what callers actually did."""

from __future__ import annotations

import logging

import orjson
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from models.bundle import Bundle
from server.logs import REQUEST_ID, JsonFormatter
from tests.conftest import PUBLIC
from tests.helpers import send


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_count_requests_by_route_template_events_and_the_model(
    client: TestClient, bundle: Bundle, visitor_id: str
) -> None:
    route = (("method", "GET"), ("route", "/v1/items/{item_id}"))
    before = samples(client)
    ok_before = before.get(("encore_requests_total", (*route, ("status", "200"))), 0.0)
    missing_before = before.get(("encore_requests_total", (*route, ("status", "404"))), 0.0)
    client.get(f"/v1/items/{bundle.items[0]['item_id']}", headers=PUBLIC)
    client.get("/v1/items/no-such-item", headers=PUBLIC)
    client.get("/v1/items/no-such-item-either", headers=PUBLIC)
    send(client, {"type": "view", "visitor_id": visitor_id, "item_id": bundle.items[0]["item_id"]})
    after = samples(client)
    assert after[("encore_requests_total", (*route, ("status", "200")))] == ok_before + 1
    assert after[("encore_requests_total", (*route, ("status", "404")))] == missing_before + 2
    # One series per template: the raw ids never become labels.
    assert not any("no-such-item" in str(labels) for _, labels in after)
    count = after[("encore_request_seconds_count", route)]
    assert count >= 3
    accepted = (("outcome", "accepted"),)
    assert (
        after[("encore_events_total", accepted)]
        == before.get(("encore_events_total", accepted), 0) + 1
    )
    assert after[("encore_model_info", (("model", "als"), ("version", bundle.version)))] == 1
    assert after[("encore_model_age_seconds", ())] >= 0
    assert after[("encore_redis_up", ())] == 1


def test_every_answer_carries_a_request_id_that_log_lines_share(client: TestClient) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "shop-req-42"})
    assert given.headers["x-request-id"] == "shop-req-42"
    made = client.get("/healthz", headers={"X-Request-ID": "no\nnewlines or spaces"})
    assert made.headers["x-request-id"] != "no\nnewlines or spaces"
    assert len(made.headers["x-request-id"]) == 32
    token = REQUEST_ID.set("abc123")
    try:
        record = logging.LogRecord(
            "server", logging.WARNING, __file__, 1, "redis %s", ("down",), None
        )
        line = orjson.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    assert line["request_id"] == "abc123"
    assert line["message"] == "redis down" and line["level"] == "warning"
