"""The compact form of one interaction in a person's recent-interactions list.

An entry is `<type code>\\t<item id>\\t<whole seconds>`: the list is the largest thing
Redis keeps per person, so its type is one letter and its time has no fraction. Recency
weights work in days, and the list's order keeps one second's events in sequence (a
sign-in's merge of two lists too: state/absorb.lua). Entries written before the codes,
with the full type name and milliseconds, still decode.
"""

from __future__ import annotations

from collections.abc import Sequence

from models.events import EventType
from models.history import Interaction

SEPARATOR = "\t"
_FIELDS = 3
_new = tuple.__new__  # builds the named tuple without its Python-level __new__

# One letter per event type, as stored: never change or reuse a letter.
TYPE_CODES: dict[str, str] = {
    EventType.VIEW: "v",
    EventType.ADD_TO_CART: "a",
    EventType.REMOVE_FROM_CART: "r",
    EventType.PURCHASE: "p",
    EventType.WISHLIST_ADD: "w",
    EventType.SEARCH: "s",
    EventType.REVIEW: "R",
    EventType.REC_IMPRESSION: "i",
    EventType.REC_CLICK: "c",
    EventType.EMAIL_OPEN: "o",
    EventType.EMAIL_CLICK: "e",
    EventType.SIGNUP: "u",
    EventType.SHIPMENT_DELAYED: "d",
    EventType.RETURN_REQUESTED: "x",
}
# A stored first field -> the event type's name: its letter, or (older entries) its name.
_TYPE_NAMES = {code: str(name) for name, code in TYPE_CODES.items()} | {
    str(name): str(name) for name in TYPE_CODES
}


def encode_interaction(event_type: str, item_id: str, timestamp: float) -> str:
    return f"{TYPE_CODES[event_type]}{SEPARATOR}{item_id}{SEPARATOR}{int(timestamp)}"


def decode_interaction(entry: str) -> Interaction:
    stored_type, item_id, timestamp = entry.split(SEPARATOR)
    return Interaction(item_id, _TYPE_NAMES.get(stored_type, stored_type), float(timestamp))


def decode_interactions(entries: Sequence[str]) -> list[Interaction]:
    """A whole list, in its order: one split for all of it rather than one an entry, a
    third faster for the hundred a segment refresh decodes per person. Ids hold no
    control characters (`models.events.Identifier`), so every entry is three fields."""
    parts = SEPARATOR.join(entries).split(SEPARATOR)
    if len(parts) != _FIELDS * len(entries):  # not written by encode_interaction
        return [decode_interaction(entry) for entry in entries]  # raises on the bad one
    stored_types = parts[0::_FIELDS]
    names = map(_TYPE_NAMES.get, stored_types, stored_types)
    fields = zip(parts[1::_FIELDS], names, map(float, parts[2::_FIELDS]), strict=True)
    return [_new(Interaction, values) for values in fields]
