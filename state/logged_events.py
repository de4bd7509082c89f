"""How the behaviour stream holds an event: its values in tab-separated columns.

The stream keeps every recent event (up to `STREAM_MAX_LEN`), so what one entry weighs
is most of what the stream weighs. A JSON record spelt out every field name and an ISO
time in each entry: a typical view took 172 bytes of the stream's listpacks. Columns
hold only the values: 64 bytes. An entry is one field, `row`:

    timestamp  type  visitor_id  event_id  item_id  category  rest  person

- `timestamp`: Unix seconds, with six decimals when the time has microseconds, so that
  it comes back exactly as it was sent;
- `rest`: every other field, as JSON; empty when there is none;
- `person`: whom the event was stored under; empty for the visitor's own person.

A tab cannot occur inside a column: identifiers refuse control characters
(`models.events.Identifier`) and JSON escapes them. Entries written before this format,
`{person, event}` with the event as JSON, still decode.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from models.events import Event
from state import keys

ROW = "row"
SEPARATOR = "\t"
# The fields with a column of their own, in column order after the timestamp.
_COLUMNS = ("type", "visitor_id", "event_id", "item_id", "category")
_IN_REST = {*_COLUMNS, "timestamp", "customer_token"}
_SERIALIZER = Event.__pydantic_serializer__  # JSON straight from the validated event
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class LoggedEvent(NamedTuple):
    person: str
    row: dict[str, Any]  # the event as an events file holds it, timestamp in ISO 8601
    timestamp: float


def columns(event: Event, at: datetime) -> str:
    """An event's entry without its person, who is known only once links are resolved.

    `at` is the time the event is filed under: the caller's, else its arrival."""
    rest = _SERIALIZER.to_json(event, exclude=_IN_REST, exclude_none=True)
    return SEPARATOR.join(
        (
            _seconds(at),
            event.type.value,
            event.visitor_id,
            event.event_id or "",
            event.item_id or "",
            event.category or "",
            "" if rest == b"{}" else rest.decode(),
        )
    )


def entry(event_columns: str, visitor_id: str, person: str) -> str:
    """The stream entry's `row`: the columns, then the person unless it is the visitor's."""
    own = person == keys.visitor_person(visitor_id)
    return f"{event_columns}{SEPARATOR}{'' if own else person}"


def decode(fields: Mapping[str, str]) -> LoggedEvent:
    text = fields.get(ROW)
    if text is None:
        return _decode_json_entry(fields)
    stamp, kind, visitor, event_id, item_id, category, rest, person = text.split(SEPARATOR)
    at = _time(stamp)
    row: dict[str, Any] = {"timestamp": at.isoformat(), "type": kind, "visitor_id": visitor}
    for name, value in (("event_id", event_id), ("item_id", item_id), ("category", category)):
        if value:
            row[name] = value
    if rest:
        row.update(orjson.loads(rest))
    return LoggedEvent(person or keys.visitor_person(visitor), row, at.timestamp())


def person_of(fields: Mapping[str, str]) -> str | None:
    """Whom an entry was stored under, without decoding its event."""
    text = fields.get(ROW)
    if text is None:
        return fields.get("person")
    person = text.rsplit(SEPARATOR, 1)[1]
    return person or keys.visitor_person(text.split(SEPARATOR, 3)[2])


def _seconds(at: datetime) -> str:
    """Exact: integer arithmetic, where a float timestamp could lose a microsecond."""
    since = at - _EPOCH
    whole = since.days * 86_400 + since.seconds
    return f"{whole}.{since.microseconds:06d}" if since.microseconds else str(whole)


def _time(stamp: str) -> datetime:
    whole, _, micro = stamp.partition(".")
    return _EPOCH + timedelta(seconds=int(whole), microseconds=int(micro or 0))


def _decode_json_entry(fields: Mapping[str, str]) -> LoggedEvent:
    row: dict[str, Any] = orjson.loads(fields["event"])
    at = datetime.fromisoformat(row["timestamp"])
    return LoggedEvent(fields["person"], row, at.timestamp())
