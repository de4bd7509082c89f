"""Every Redis key name Encore uses, and nothing else.

A person is a visitor (`v:<visitor_id>`) or, once known, a customer (`c:<customer_id>`).
All keys of one person share the hash tag `{<person>}` so that they live on one Redis
Cluster slot and one person's update can be a single atomic script. Everything shared
between persons (the stream, segment sets, retention, offers) is written by separate,
single-slot commands: no script or transaction ever spans two slots (state/slots.py).
Identifiers may not contain braces (see `models.events`), so an id can never break out of its tag.
"""

from __future__ import annotations

PREFIX = "enc"

# The behaviour stream of every accepted event, capped by MAXLEN.
EVENTS_STREAM = f"{PREFIX}:events"

# The catalog: items by id, a change log the servers tail, and its revision counter.
CATALOG_ITEMS = f"{PREFIX}:{{catalog}}:items"
CATALOG_LOG = f"{PREFIX}:{{catalog}}:log"
CATALOG_REV = f"{PREFIX}:{{catalog}}:rev"

# Per person. The templates are also handed to the ingest Lua script, so the names
# below are the only spelling of these keys anywhere in the project.
PERSON_TEMPLATES: dict[str, str] = {
    "profile": PREFIX + ":{%s}:profile",  # hash: counters, dates, consent flags
    "recent": PREFIX + ":{%s}:recent",  # list, newest first (state/interactions.py)
    "cart": PREFIX + ":{%s}:cart",  # hash: item_id -> quantity
    "wishlist": PREFIX + ":{%s}:wishlist",  # set of item ids
    "purchased": PREFIX + ":{%s}:purchased",  # set of item ids
    "orders": PREFIX + ":{%s}:orders",  # hash: order id -> "value|ts[|R]": the LTV ledger
    "visitors": PREFIX + ":{%s}:visitors",  # set of visitor ids linked to a customer
    "counts": PREFIX + ":{%s}:counts",  # hash: "type:day" -> events that day (91 days)
    "segments": PREFIX + ":{%s}:segments",  # set: the segments the person is in now
    "redeemed": PREFIX + ":{%s}:redeemed",  # set: offer ids the person redeemed
    "referred": PREFIX + ":{%s}:referred",  # set: people this customer referred
    "journeys": PREFIX + ":{%s}:journeys",  # set: the person's pending journey steps
    "messages": PREFIX + ":{%s}:messages",  # zset: marketing messages sent, by time
    "touches": PREFIX + ":{%s}:touches",  # list, newest first: clicks that may earn credit
    # zset: event id -> when it arrived, trimmed to the dedup window. A retry of an event
    # resolves to the same person (or the customer it merged into, which takes the ids).
    # It and `unlogged` expire with their newest id's window, `counts` 91 days after its
    # newest day (state/windows.lua).
    "seen": PREFIX + ":{%s}:seen",
    # hash: event id -> "<new order><first order>|<arrival>": applied, not yet on the stream
    "unlogged": PREFIX + ":{%s}:unlogged",
    "sent": PREFIX + ":{%s}:sent",  # zset: journey message id -> when it was claimed (30 days)
    "sending": PREFIX + ":{%s}:sending",  # set: message ids claimed, not yet in the outbox
}
# visitor id -> the customer id it was linked to (in the visitor's own slot).
LINK_TEMPLATE = PREFIX + ":{v:%s}:customer"
# visitor id -> the customer it is being merged into, until the merge has finished.
MERGING_TEMPLATE = PREFIX + ":{v:%s}:merging"


VISITOR_PERSON = "v:%s"
CUSTOMER_PERSON = "c:%s"


def visitor_person(visitor_id: str) -> str:
    return VISITOR_PERSON % visitor_id


def customer_person(customer_id: str) -> str:
    return CUSTOMER_PERSON % customer_id


def is_customer(person: str) -> bool:
    return person.startswith(CUSTOMER_PERSON % "")


def customer_of(person: str) -> str | None:
    """The customer id of a customer's person, None for an anonymous visitor."""
    return _id_of(person, CUSTOMER_PERSON % "")


def visitor_of(person: str) -> str | None:
    """The visitor id of an anonymous person, None for a customer."""
    return _id_of(person, VISITOR_PERSON % "")


def _id_of(person: str, prefix: str) -> str | None:
    return person[len(prefix) :] if person.startswith(prefix) else None


def person_key(kind: str, person: str) -> str:
    return PERSON_TEMPLATES[kind] % person


# Every person with state has a profile: a SCAN for this finds everyone (the worker's
# segment sweep), with no set of everyone to keep, which at millions of people would
# weigh as much as a profile's worth of values and sit on one cluster node.
PROFILE_PATTERN = PERSON_TEMPLATES["profile"] % "*"
# The set of everyone that versions before kept: erasure still takes a person out of it,
# for as long as an upgraded store has one (docs/operations.md).
LEGACY_PEOPLE = f"{PREFIX}:people"
_PROFILE_HEAD, _PROFILE_TAIL = PERSON_TEMPLATES["profile"].split("%s")


def person_of_profile(key: str) -> str:
    """The person whose profile key this is."""
    return key[len(_PROFILE_HEAD) : len(key) - len(_PROFILE_TAIL)]


def link_key(visitor_id: str) -> str:
    return LINK_TEMPLATE % visitor_id


def merging_key(visitor_id: str) -> str:
    return MERGING_TEMPLATE % visitor_id


# Segment membership: segment name -> set of persons (sizes are SCARD).
SEGMENT_TEMPLATE = PREFIX + ":segment:%s"

# Offer redemptions, all in the offer's slot so one script can check and count them.
OFFER_TEMPLATES: dict[str, str] = {
    "orders": PREFIX + ":{offer:%s}:orders",  # hash: order id -> person who redeemed
    "stats": PREFIX + ":{offer:%s}:stats",  # hash: the fields below
}
# Fields of an offer's stats hash ("%s" is the person): everyone's redemptions, the
# person's over a lifetime, their loyalty points spent, and "<period>|<count>" for their
# latest period of redemptions.
OFFER_STAT_FIELDS: dict[str, str] = {
    "total": "total",
    "count": "p:%s",
    "points": "pts:%s",
    "period": "pp:%s",
}


# Journeys: steps waiting for their time (member -> due), each person's pending steps,
# and the outbox the store's messaging service reads.
JOURNEY_DUE = f"{PREFIX}:journeys:due"
OUTBOX_STREAM = f"{PREFIX}:outbox"
JOURNEY_GROUP = "journeys"
DELIVERY_GROUP = "delivery"
DELIVERY_RETRY = f"{PREFIX}:delivery:retry"  # zset: JSON message -> when to try again
DELIVERY_DEAD = f"{PREFIX}:outbox:dead"  # stream: messages that never got through


# An email send's answer per recipient and placement, kept so re-opens see the same items.
SEND_TEMPLATE = PREFIX + ":send:{%s}:%s:%s"


def send_key(send_id: str, placement: str, visitor_id: str) -> str:
    return SEND_TEMPLATE % (send_id, placement, visitor_id)


def segment_key(name: str) -> str:
    return SEGMENT_TEMPLATE % name


def offer_key(kind: str, offer_id: str) -> str:
    return OFFER_TEMPLATES[kind] % offer_id


# Retention: who bought in a month, who bought for the first time, and the month's
# order count and revenue. One hash tag, so a union of months is one script on a Cluster.
BUYERS_TEMPLATE = PREFIX + ":{retention}:buyers:%s"  # set of persons, per "YYYY-MM"
NEW_BUYERS_TEMPLATE = PREFIX + ":{retention}:new:%s"  # set of first-time buyers
MONTH_TOTALS_TEMPLATE = PREFIX + ":{retention}:totals:%s"  # hash: orders, revenue


def buyers_key(month: str) -> str:
    return BUYERS_TEMPLATE % month


def new_buyers_key(month: str) -> str:
    return NEW_BUYERS_TEMPLATE % month


def month_totals_key(month: str) -> str:
    return MONTH_TOTALS_TEMPLATE % month


# Attribution: one hash of "<measure>|<dimension>|<key>" -> count or revenue, where the
# measure is impressions, clicks, orders or revenue and the dimension placement, model,
# variant, journey or offer.
ATTRIBUTION = f"{PREFIX}:{{stats}}:attribution"


def attribution_field(measure: str, dimension: str, key: str) -> str:
    return f"{measure}|{dimension}|{key}"


# Experiments: running totals per variant (fields of `VariantTotals`), and on each
# exposed person's profile the variant they saw first and their outcomes since then.
VARIANT_TEMPLATE = PREFIX + ":{stats}:experiment:%s:%s"
EXPOSURE_FIELD = "x:%s"
EXPOSURE_ORDERS_FIELD = "x:%s:orders"
EXPOSURE_REVENUE_FIELD = "x:%s:revenue"


def variant_key(experiment: str, variant: str) -> str:
    return VARIANT_TEMPLATE % (experiment, variant)


# People erased on request, as SHA-256 digests of their visitor and customer ids (never
# the ids themselves): training exports skip their events from then on.
ERASED = f"{PREFIX}:erased"

# Token buckets for rate limits, one per API key digest and one per client address.
RATE_BUCKET_TEMPLATE = PREFIX + ":rate:{%s}"
