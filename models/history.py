"""What a visitor did, as ranking and the campaign rules see it: plain data, no imports
heavier than the standard library, so the pure rule packages stay light."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple


class Interaction(NamedTuple):
    """One interaction of a person's recent list. A tuple, not a frozen dataclass:
    every recommendation and segment refresh decodes up to a hundred of them."""

    item_id: str
    event_type: str
    timestamp: float  # seconds since the epoch


@dataclass(frozen=True)
class VisitorHistory:
    """What the server knows about a visitor when it ranks for them."""

    interactions: Sequence[Interaction] = ()
    purchased: frozenset[str] = frozenset()
    cart: Sequence[str] = ()

    @property
    def is_empty(self) -> bool:
        return not self.interactions and not self.cart
