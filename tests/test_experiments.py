"""Experiments: sticky, evenly spread assignment, and the interval maths by hand."""

from __future__ import annotations

import math

import pytest

from campaigns.config import CampaignsError, parse_campaigns
from campaigns.experiments import Experiment, Strategy, Variant
from campaigns.measurement import (
    VariantTotals,
    difference_of_means,
    difference_of_proportions,
    mean,
    proportion,
    uplift,
    variant_result,
)


def three_way() -> Experiment:
    return Experiment(
        name="home_model",
        variants=[
            Variant(name="personal", weight=45),
            Variant(name="trending", weight=45, strategy=Strategy.TRENDING),
            Variant(name="holdout", weight=10, strategy=Strategy.TRENDING, holdout=True),
        ],
    )


def test_a_visitor_keeps_their_variant() -> None:
    experiment = three_way()
    first = [experiment.assign(f"visitor-{n}").name for n in range(1000)]
    again = [experiment.assign(f"visitor-{n}").name for n in range(1000)]
    assert first == again
    assert len(set(first)) == 3


def test_variants_split_within_two_percent_of_their_weights_over_100k_ids() -> None:
    experiment = three_way()
    counts = {variant.name: 0 for variant in experiment.variants}
    for n in range(100_000):
        counts[experiment.assign(f"v{n:06d}").name] += 1
    for variant in experiment.variants:
        share = counts[variant.name] / 100_000
        assert abs(share - variant.weight / 100) < 0.02, (variant.name, share)


def test_experiments_assign_independently() -> None:
    """Being in one experiment's holdout says nothing about another's."""
    a, b = three_way(), three_way().model_copy(update={"name": "cart_model"})
    in_a_holdout = [f"v{n}" for n in range(20_000) if a.assign(f"v{n}").holdout]
    also_in_b = sum(b.assign(visitor).holdout for visitor in in_a_holdout) / len(in_a_holdout)
    assert abs(also_in_b - 0.10) < 0.02


def test_the_campaigns_file_refuses_overlapping_or_personalised_holdouts() -> None:
    overlapping = """
experiments:
  - name: first
    variants: [{name: a, weight: 1}, {name: b, weight: 1}]
  - name: second
    placements: [home]
    variants: [{name: a, weight: 1}, {name: b, weight: 1}]
"""
    with pytest.raises(CampaignsError, match="both run on placement 'home'"):
        parse_campaigns(overlapping)
    personalised_holdout = """
experiments:
  - name: first
    variants: [{name: a, weight: 1}, {name: h, weight: 1, holdout: true}]
"""
    with pytest.raises(CampaignsError, match=r"line 4.*strategy trending"):
        parse_campaigns(personalised_holdout)


def test_wilson_interval_matches_the_hand_computed_case() -> None:
    # 20 of 100: p = 0.2, z = 1.96. centre = (0.2 + 1.96²/200) / (1 + 1.96²/100)
    #   = 0.219208 / 1.038415 = 0.211099; half = 1.96 * sqrt(0.0016 + 0.00009604) / 1.038415
    #   = 0.077735; interval [0.13336, 0.28884].
    estimate = proportion(20, 100)
    assert estimate is not None
    assert estimate.value == 0.2
    assert estimate.low == pytest.approx(0.13336, abs=1e-4)
    assert estimate.high == pytest.approx(0.28884, abs=1e-4)
    assert proportion(0, 0) is None


def test_mean_and_difference_intervals_match_the_hand_computed_case() -> None:
    # Revenues 0, 10, 20, 30: mean 15, sample variance 166.67, se = sqrt(166.67 / 4) = 6.455
    values = [0.0, 10.0, 20.0, 30.0]
    estimate = mean(sum(values), sum(v * v for v in values), len(values))
    assert estimate is not None
    assert estimate.value == 15
    assert estimate.high - 15 == pytest.approx(1.959964 * math.sqrt(500 / 3 / 4), rel=1e-6)
    # Against 0, 0, 10, 10: mean 5, variance 33.33; se = sqrt(166.67/4 + 33.33/4) = 7.071
    other = [0.0, 0.0, 10.0, 10.0]
    delta = difference_of_means(
        (sum(values), sum(v * v for v in values), 4), (sum(other), sum(v * v for v in other), 4)
    )
    assert delta is not None
    assert delta.value == 10
    assert delta.low == pytest.approx(10 - 1.959964 * math.sqrt(50), rel=1e-6)
    # Conversion 30/100 against 20/100: se = sqrt(.21/100 + .16/100) = 0.060828
    lift = difference_of_proportions((30, 100), (20, 100))
    assert lift is not None
    assert lift.value == pytest.approx(0.1)
    assert lift.high == pytest.approx(0.1 + 1.959964 * 0.060828, rel=1e-4)


def test_a_variant_report_reads_its_totals() -> None:
    variant = VariantTotals(visitors=200, impressions=1000, clicks=50, converters=40,
                            repeaters=10, revenue=4000.0, revenue_sq=400_000.0)  # fmt: skip
    holdout = VariantTotals(visitors=100, converters=10, revenue=500.0, revenue_sq=50_000.0)
    result = variant_result(variant)
    assert result.ctr is not None and result.ctr.value == 0.05
    assert result.conversion is not None and result.conversion.value == 0.2
    assert result.revenue_per_visitor is not None and result.revenue_per_visitor.value == 20
    assert result.repeat_purchase_rate is not None and result.repeat_purchase_rate.value == 0.25
    gains = uplift(variant, holdout)
    assert gains["conversion"] is not None and gains["conversion"].value == pytest.approx(0.1)
    revenue = gains["revenue_per_visitor"]
    assert revenue is not None and revenue.value == pytest.approx(15)
