"""The retention dashboard's numbers, gathered from Redis and the model being served.

One JSON document (GET /v1/dashboard) that the dashboard page draws; the maths lives in
`campaigns.retention` and `campaigns.measurement`, the reads in `state.measurement`.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from redis.asyncio import Redis

from campaigns.config import Campaigns
from campaigns.experiments import Experiment
from campaigns.measurement import Estimate, uplift, variant_result
from campaigns.retention import month_of, months_ending
from server.engine import Engine
from state import measurement
from state.segments import segment_sizes


async def dashboard(
    redis: Redis,
    engine: Engine,
    campaigns: Campaigns,
    months: int,
    end: str | None,
    active_months: int,
) -> dict[str, Any]:
    last = end or month_of(time.time())
    reports = await measurement.retention_months(redis, months_ending(last, months), active_months)
    names = sorted(campaigns.segments)
    sizes = await segment_sizes(redis, names)
    values = await measurement.segment_lifetime_values(redis, names)
    return {
        "generated_at": time.time(),
        "active_months": active_months,
        "retention": [
            {
                **asdict(report),
                "repeat_purchase_rate": report.repeat_purchase_rate,
                "average_order_value": report.average_order_value,
            }
            for report in reports
        ],
        "segments": [
            {
                "name": name,
                "size": sizes[name],
                "average_lifetime_value": values[name][0],
                "lifetime_value_sample": values[name][1],
            }
            for name in names
        ],
        "attribution": await measurement.attribution_totals(redis),
        "experiments": [
            await experiment_report(redis, experiment) for experiment in campaigns.experiments
        ],
        "events_total": await measurement.events_added(redis),
        "model": model_summary(engine),
    }


async def experiment_report(redis: Redis, experiment: Experiment) -> dict[str, Any]:
    totals = await measurement.variant_totals(redis, experiment)
    holdout = experiment.holdout
    weight = sum(variant.weight for variant in experiment.variants)
    variants = []
    for variant in experiment.variants:
        mine = totals[variant.name]
        result = variant_result(mine)
        compared = (
            uplift(mine, totals[holdout.name])
            if holdout is not None and variant is not holdout
            else None
        )
        variants.append(
            {
                "name": variant.name,
                "share": variant.weight / weight,
                "strategy": variant.strategy.value,
                "holdout": variant.holdout,
                "totals": asdict(mine),
                # vars(), not asdict(): the Estimates stay objects for _estimate.
                **{name: _estimate(value) for name, value in vars(result).items()},
                "uplift": (
                    {name: _estimate(value) for name, value in compared.items()}
                    if compared is not None
                    else None
                ),
            }
        )
    return {
        "name": experiment.name,
        "active": experiment.active,
        "placements": experiment.placements,
        "holdout": holdout.name if holdout else None,
        "variants": variants,
    }


def model_summary(engine: Engine) -> dict[str, Any] | None:
    recommender = engine.recommender
    if recommender is None:
        return None
    manifest = recommender.bundle.manifest
    return {
        "version": recommender.bundle.version,
        "model": manifest.get("model"),
        "created_at": manifest.get("created_at"),
        "rows": manifest.get("rows", {}),
        "selection": manifest.get("selection", {}),
        "metrics": manifest.get("metrics", {}),
    }


def _estimate(value: Estimate | None) -> dict[str, float] | None:
    return asdict(value) if value is not None else None
