"""Reading the retention, attribution and experiment counters the dashboard shows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from campaigns.experiments import Experiment
from campaigns.measurement import VariantTotals
from campaigns.person import Order
from campaigns.retention import MonthReport, month_report, windows_for
from state import keys

LTV_SAMPLE = 200
# The size of each union of buyer sets, counted in Redis (all in the {retention} slot).
# KEYS: the sets of every window in turn; ARGV: how many sets each window has.
_UNION_SIZES = """
local sizes, at = {}, 1
for i = 1, #ARGV do
  local n = tonumber(ARGV[i])
  sizes[i] = n > 0 and #redis.call('SUNION', unpack(KEYS, at, at + n - 1)) or 0
  at = at + n
end
return sizes
"""


async def retention_months(
    redis: Redis, months: Sequence[str], active_months: int
) -> list[MonthReport]:
    """B, E and N for each month, counted from the monthly buyer sets.

    A month's B is the month before's E, so each window's union is counted once: the
    first month's start window, then every month's end window.
    """
    windows = [windows_for(month, active_months) for month in months]
    unions = [windows[0].start, *(w.end for w in windows)]
    names = [keys.buyers_key(m) for window in unions for m in window]
    counted = redis.register_script(_UNION_SIZES)
    active = [int(n) for n in await counted(keys=names, args=[len(w) for w in unions])]
    pipe = redis.pipeline(transaction=False)
    for month in months:
        pipe.scard(keys.new_buyers_key(month))
        pipe.scard(keys.buyers_key(month))
        pipe.hmget(keys.month_totals_key(month), ["orders", "revenue"])
    rest = iter(await pipe.execute())
    reports = []
    for n, month in enumerate(months):
        new, buyers, (orders, revenue) = next(rest), next(rest), next(rest)
        counts = (active[n], active[n + 1], int(new), int(buyers), int(orders or 0))
        reports.append(month_report(month, *counts, float(revenue or 0.0)))
    return reports


async def attribution_totals(redis: Redis) -> dict[str, dict[str, dict[str, float]]]:
    """dimension -> key -> {impressions, clicks, orders, revenue} for whatever was seen."""
    totals: dict[str, dict[str, dict[str, float]]] = {}
    for field, value in (await redis.hgetall(keys.ATTRIBUTION)).items():
        measure, dimension, key = str(field).split("|", 2)
        row = totals.setdefault(dimension, {}).setdefault(key, {})
        row[measure] = float(value)
    return totals


async def variant_totals(redis: Redis, experiment: Experiment) -> dict[str, VariantTotals]:
    pipe = redis.pipeline(transaction=False)
    for variant in experiment.variants:
        pipe.hgetall(keys.variant_key(experiment.name, variant.name))
    answers = await pipe.execute()
    return {
        variant.name: _variant_totals(raw)
        for variant, raw in zip(experiment.variants, answers, strict=True)
    }


async def segment_lifetime_values(
    redis: Redis, segments: Sequence[str], sample: int = LTV_SAMPLE
) -> dict[str, tuple[float | None, int]]:
    """Average lifetime value per segment from a random sample of its members, and the
    sample's size: exact for small segments, an estimate for big ones."""
    pipe = redis.pipeline(transaction=False)
    for name in segments:
        pipe.srandmember(keys.segment_key(name), sample)
    members = await pipe.execute()
    pipe = redis.pipeline(transaction=False)
    for people in members:
        for person in people:
            pipe.hvals(keys.person_key("orders", person))
    ledgers = iter(await pipe.execute())
    averages: dict[str, tuple[float | None, int]] = {}
    for name, people in zip(segments, members, strict=True):
        values = [_lifetime_value(next(ledgers)) for _ in people]
        averages[name] = (sum(values) / len(values) if values else None, len(values))
    return averages


async def events_added(redis: Redis) -> int:
    """Every event the stream has ever accepted (a counter that survives trimming)."""
    try:
        info: dict[Any, Any] = await redis.xinfo_stream(keys.EVENTS_STREAM)
    except Exception:  # no stream yet
        return 0
    return int(info.get("entries-added") or 0)


def _lifetime_value(entries: list[str]) -> float:
    orders = [Order.parse("", entry) for entry in entries]
    return sum(order.value for order in orders if not order.returned)


def _variant_totals(raw: dict[Any, Any]) -> VariantTotals:
    fields = dict(raw)
    counts = {
        name: int(fields.get(name, 0))
        for name in ("visitors", "impressions", "clicks", "converters", "repeaters")
    }
    return VariantTotals(
        **counts,
        revenue=float(fields.get("revenue", 0.0)),
        revenue_sq=float(fields.get("revenue_sq", 0.0)),
    )
