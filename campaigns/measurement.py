"""Experiment results: rates and means per variant with 95% intervals, and the uplift.

Everything is computed from running totals (counts, sums and sums of squares), which is
what Redis keeps per variant, so a report never needs to read per-visitor rows.
Proportions use the Wilson score interval, which stays inside [0, 1] and behaves for
small counts; means and differences use the normal approximation, which is what a
marketer's A/B calculator shows and is sound at the sample sizes a store sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class VariantTotals:
    """What Redis counts for one variant. Visitors are those shown at least one of its
    recommendations; converters bought after that, repeaters bought twice or more;
    revenue_sq is the sum over visitors of their revenue squared."""

    visitors: int = 0
    impressions: int = 0
    clicks: int = 0
    converters: int = 0
    repeaters: int = 0
    revenue: float = 0.0
    revenue_sq: float = 0.0


@dataclass(frozen=True)
class VariantResult:
    ctr: Estimate | None
    conversion: Estimate | None
    revenue_per_visitor: Estimate | None
    repeat_purchase_rate: Estimate | None


def proportion(successes: int, trials: int, z: float = Z95) -> Estimate | None:
    """Wilson score interval for successes / trials; None with no trials."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))


def sample_variance(total: float, total_sq: float, n: int) -> float:
    """Unbiased variance from a sum and a sum of squares (0 for fewer than 2 values)."""
    if n < 2:
        return 0.0
    return max(0.0, (total_sq - total * total / n) / (n - 1))


def mean(total: float, total_sq: float, n: int, z: float = Z95) -> Estimate | None:
    """The mean with a normal-approximation interval; None with no values."""
    if n <= 0:
        return None
    centre = total / n
    half = z * math.sqrt(sample_variance(total, total_sq, n) / n)
    return Estimate(centre, centre - half, centre + half)


def difference_of_proportions(
    a: tuple[int, int], b: tuple[int, int], z: float = Z95
) -> Estimate | None:
    """(successes, trials) of a minus b, with the unpooled normal interval."""
    (sa, na), (sb, nb) = a, b
    if na <= 0 or nb <= 0:
        return None
    pa, pb = sa / na, sb / nb
    half = z * math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
    return Estimate(pa - pb, pa - pb - half, pa - pb + half)


def difference_of_means(
    a: tuple[float, float, int], b: tuple[float, float, int], z: float = Z95
) -> Estimate | None:
    """(total, total_sq, n) of a minus b: Welch's standard error, normal interval."""
    (ta, qa, na), (tb, qb, nb) = a, b
    if na <= 0 or nb <= 0:
        return None
    delta = ta / na - tb / nb
    half = z * math.sqrt(sample_variance(ta, qa, na) / na + sample_variance(tb, qb, nb) / nb)
    return Estimate(delta, delta - half, delta + half)


def variant_result(totals: VariantTotals) -> VariantResult:
    return VariantResult(
        ctr=proportion(totals.clicks, totals.impressions),
        conversion=proportion(totals.converters, totals.visitors),
        revenue_per_visitor=mean(totals.revenue, totals.revenue_sq, totals.visitors),
        repeat_purchase_rate=proportion(totals.repeaters, totals.converters),
    )


def uplift(variant: VariantTotals, holdout: VariantTotals) -> dict[str, Estimate | None]:
    """What the variant adds over the holdout, in absolute terms, with intervals."""
    return {
        "conversion": difference_of_proportions(
            (variant.converters, variant.visitors), (holdout.converters, holdout.visitors)
        ),
        "revenue_per_visitor": difference_of_means(
            (variant.revenue, variant.revenue_sq, variant.visitors),
            (holdout.revenue, holdout.revenue_sq, holdout.visitors),
        ),
    }
