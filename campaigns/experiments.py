"""A/B experiments: configuration and sticky assignment of visitors to variants.

A visitor's variant is a pure function of the experiment's name and the visitor id (a
hash, not a stored draw), so every server replica, the ingest path and the offline
jobs agree on it without asking Redis, and a visitor keeps their variant for as long as
the experiment runs. Naming the experiment in the hash keeps experiments independent:
being in one experiment's holdout says nothing about the next one.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = r"^[a-z0-9_]{1,32}$"
PLACEMENTS = ("home", "product", "cart", "post_purchase", "email")
_HASH_SCALE = float(2**64)


class Strategy(StrEnum):
    """What a variant serves: the trained model folded with the visitor's clicks, or the
    same bestsellers everyone gets (the holdout's 'no personalisation')."""

    PERSONAL = "personal"
    TRENDING = "trending"


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    weight: float = Field(gt=0, description="share of visitors, relative to the others")
    strategy: Strategy = Strategy.PERSONAL
    holdout: bool = Field(default=False, description="the control: never personalised")

    @model_validator(mode="after")
    def _holdout_is_plain(self) -> Variant:
        if self.holdout and self.strategy is not Strategy.TRENDING:
            raise ValueError("a holdout variant gets no personalisation: strategy trending")
        return self


class Experiment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    placements: list[str] = Field(default_factory=list, description="empty: every placement")
    variants: list[Variant] = Field(min_length=2)
    active: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        names = [variant.name for variant in self.variants]
        if len(names) != len(set(names)):
            raise ValueError("variant names must be unique")
        if sum(variant.holdout for variant in self.variants) > 1:
            raise ValueError("an experiment has at most one holdout variant")
        unknown = set(self.placements) - set(PLACEMENTS)
        if unknown:
            raise ValueError(f"unknown placements {sorted(unknown)}; known: {PLACEMENTS}")
        return self

    def covers(self, placement: str) -> bool:
        return self.active and (not self.placements or placement in self.placements)

    @property
    def holdout(self) -> Variant | None:
        return next((variant for variant in self.variants if variant.holdout), None)

    def assign(self, visitor_id: str) -> Variant:
        """The visitor's variant: the same answer on every call, replica and restart."""
        point = bucket(self.name, visitor_id) * sum(v.weight for v in self.variants)
        for variant in self.variants:
            point -= variant.weight
            if point < 0:
                return variant
        return self.variants[-1]


def bucket(experiment: str, visitor_id: str) -> float:
    """A uniform point in [0, 1) drawn from the visitor id, independently per experiment."""
    digest = hashlib.blake2b(f"{experiment}\x00{visitor_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HASH_SCALE


def experiment_for(experiments: list[Experiment], placement: str) -> Experiment | None:
    """The running experiment on this placement (configuration keeps them disjoint)."""
    return next((e for e in experiments if e.covers(placement)), None)


def check_disjoint(experiments: list[Experiment]) -> None:
    """Two running experiments on one placement would each claim the same traffic."""
    claimed: dict[str, str] = {}
    for experiment in experiments:
        if not experiment.active:
            continue
        for placement in experiment.placements or PLACEMENTS:
            if placement in claimed:
                raise ValueError(
                    f"experiments {claimed[placement]!r} and {experiment.name!r} "
                    f"both run on placement {placement!r}"
                )
            claimed[placement] = experiment.name
