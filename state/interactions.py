"""The compact form of one interaction in a person's recent-interactions list."""

from __future__ import annotations

from models.history import Interaction

SEPARATOR = "\t"


def encode_interaction(event_type: str, item_id: str, timestamp: float) -> str:
    return f"{event_type}{SEPARATOR}{item_id}{SEPARATOR}{timestamp:.3f}"


def decode_interaction(entry: str) -> Interaction:
    event_type, item_id, timestamp = entry.split(SEPARATOR)
    return Interaction(item_id, event_type, float(timestamp))
