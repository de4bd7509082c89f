"""The compact form of a person's recent-interactions list.

The list is the largest thing Redis keeps per person, so an interaction is two list
elements, newest first: `<type letter><item id>`, then its time in whole seconds, which
a listpack stores as a 4-byte integer. Recency weights work in days, and the list's
order keeps one second's events in sequence (a sign-in's merge of two lists too:
state/absorb.lua). A 4-entry list is 112 bytes this way, against 144 as one
`<letter>\t<item>\t<seconds>` string an interaction.

Lists written before hold such tab-separated strings (some with the full type name and
milliseconds). They still decode, and the scripts rewrite one as pairs the first time
they write to it (state/recent.lua): a pair's first element never holds a tab (ids
cannot), an older entry always does. A lone item, whose time a trim took, is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

from models.events import EventType
from models.history import Interaction

SEPARATOR = "\t"
_FIELDS = 3  # of an older entry
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
# For the scripts that convert older entries (recent.lua): name -> letter, as plain str.
LUA_TYPE_CODES = {str(name): code for name, code in TYPE_CODES.items()}
# A stored first field -> the event type's name: its letter, or (older entries) its name.
_TYPE_NAMES = {code: str(name) for name, code in TYPE_CODES.items()} | {
    str(name): str(name) for name in TYPE_CODES
}


def encode_interaction(event_type: str, item_id: str, timestamp: float) -> list[str]:
    """The interaction's two elements in LPUSH order, so that the item ends up first."""
    return [str(int(timestamp)), f"{TYPE_CODES[event_type]}{item_id}"]


def decode_interaction(entry: str) -> Interaction:
    """One tab-separated entry of a list written before the pairs."""
    stored_type, item_id, timestamp = entry.split(SEPARATOR)
    return Interaction(item_id, _TYPE_NAMES.get(stored_type, stored_type), float(timestamp))


def decode_interactions(elements: Sequence[str]) -> list[Interaction]:
    """A whole list, newest first as stored."""
    if SEPARATOR in "".join(elements):
        return _decode_older(elements)
    # Not strict: zip stops short of a lone item at the end, whose time was trimmed.
    firsts, times = elements[0::2], elements[1::2]
    return [_pair(first, time) for first, time in zip(firsts, times, strict=False)]


def _pair(first: str, time: str) -> Interaction:
    return _new(Interaction, (first[1:], _TYPE_NAMES[first[0]], float(time)))


def _decode_older(entries: Sequence[str]) -> list[Interaction]:
    """A list written before the pairs (not yet written since): one split for all of it,
    a third faster than an entry at a time for the hundred a segment refresh decodes."""
    parts = SEPARATOR.join(entries).split(SEPARATOR)
    if len(parts) != _FIELDS * len(entries):  # pairs among them
        return _decode_mixed(entries)
    stored_types = parts[0::_FIELDS]
    names = map(_TYPE_NAMES.get, stored_types, stored_types)
    fields = zip(parts[1::_FIELDS], names, map(float, parts[2::_FIELDS]), strict=True)
    return [_new(Interaction, values) for values in fields]


def _decode_mixed(elements: Sequence[str]) -> list[Interaction]:
    found: list[Interaction] = []
    position = 0
    while position < len(elements):
        element = elements[position]
        following = elements[position + 1] if position + 1 < len(elements) else SEPARATOR
        if SEPARATOR in element:
            found.append(decode_interaction(element))
            position += 1
        elif SEPARATOR not in following:
            found.append(_pair(element, following))
            position += 2
        else:  # a lone item, whose time was trimmed
            position += 1
    return found
