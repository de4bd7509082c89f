"""The model bundle: one versioned folder holding everything the server serves.

A bundle is written under a hidden temporary name and renamed into place in one step,
so a folder whose name is a version is always complete; the server only ever looks at
those. Versions sort by creation time, so "newest" is simply the largest name.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
import orjson

from models.index import load_index, normalise_rows, save_index
from models.weights import ALPHA

MANIFEST = "manifest.json"
ITEMS = "items.jsonl"
ARRAYS = "arrays.npz"
USER_INDEX = "user_index.faiss"
SIMILAR_INDEX = "similar_index.faiss"
FORMAT_VERSION = 2
VERSION_PATTERN = re.compile(r"^\d{8}T\d{6}\d{6}Z-[0-9a-f]{6}$")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SparseRows:
    """A CSR table of per-item neighbours, best first: bought-together, item-item weights."""

    indptr: IntArray
    indices: IntArray
    values: FloatArray

    @classmethod
    def empty(cls, n_rows: int) -> SparseRows:
        return cls(np.zeros(n_rows + 1, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))

    def row(self, index: int) -> tuple[IntArray, FloatArray]:
        start, end = self.indptr[index], self.indptr[index + 1]
        return self.indices[start:end], self.values[start:end]

    def rows(self, indices: IntArray) -> tuple[IntArray, IntArray, FloatArray]:
        """The rows of `indices` end to end, as (position in `indices`, target, value)."""
        starts, ends = self.indptr[indices], self.indptr[indices + 1]
        lengths = ends - starts
        if lengths.sum() == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
        positions = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
        owners = np.repeat(np.arange(len(indices)), lengths)
        return owners, self.indices[positions], self.values[positions]

    @property
    def is_empty(self) -> bool:
        return len(self.indices) == 0


def new_version(now: datetime | None = None) -> str:
    """A version name that sorts by creation time and never collides."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


@dataclass
class Bundle:
    """A trained model and the tables the server ranks with, aligned by item index."""

    version: str
    manifest: dict[str, Any]
    items: list[dict[str, Any]]
    item_factors: FloatArray  # ALS item vectors: similar items, and fold-in for "als"
    gram: Float64Array  # YtY + regularisation * I, ready for the fold-in solve
    trending: IntArray  # item indices, most trending first
    trending_scores: FloatArray
    together: SparseRows  # items bought together with each item
    item_item: SparseRows  # per source item, weights on targets ("ease", "itemknn")
    user_index: faiss.Index  # inner product on raw factors: user-to-item scores
    similar_index: faiss.Index  # inner product on unit factors: item-to-item cosine
    index_of: dict[str, int] = field(init=False)
    unit_factors: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        self.index_of = {item["item_id"]: i for i, item in enumerate(self.items)}
        # Older bundles store it in float32; the fold-in solve wants float64.
        self.gram = np.asarray(self.gram, dtype=np.float64)
        self.unit_factors = normalise_rows(self.item_factors)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def model(self) -> str:
        """Which model ranks personal recommendations: "als", "ease" or "itemknn"."""
        return str(self.manifest.get("model", "als"))

    @property
    def half_life_days(self) -> float | None:
        """Recency half-life the model was trained with (None: no decay)."""
        value = self.manifest.get("serving", {}).get("half_life_days")
        return float(value) if value is not None else None

    @property
    def alpha(self) -> float:
        return float(self.manifest.get("serving", {}).get("alpha", ALPHA))

    def bought_together(self, index: int) -> tuple[IntArray, FloatArray]:
        return self.together.row(index)


ExtrasWriter = Callable[[Path], dict[str, Any]]


def save_bundle(bundle: Bundle, models_dir: Path, write_extras: ExtrasWriter | None = None) -> Path:
    """Write `bundle` under `models_dir/<version>` atomically and return that path.

    `write_extras` adds files of its own (the churn models) to the folder before it is
    complete; what it returns joins the manifest.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    final = models_dir / bundle.version
    staging = models_dir / f".staging-{bundle.version}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    with open(staging / ITEMS, "wb") as out:
        for item in bundle.items:
            out.write(orjson.dumps(item) + b"\n")
    np.savez(
        staging / ARRAYS,
        item_factors=bundle.item_factors,
        gram=bundle.gram,
        trending=bundle.trending,
        trending_scores=bundle.trending_scores,
        together_indptr=bundle.together.indptr,
        together_indices=bundle.together.indices,
        together_scores=bundle.together.values,
        item_item_indptr=bundle.item_item.indptr,
        item_item_indices=bundle.item_item.indices,
        item_item_values=bundle.item_item.values,
    )
    save_index(bundle.user_index, staging / USER_INDEX)
    save_index(bundle.similar_index, staging / SIMILAR_INDEX)
    extras = write_extras(staging) if write_extras is not None else {}
    manifest = {**bundle.manifest, **extras, "version": bundle.version, "format": FORMAT_VERSION}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    _fsync_tree(staging)
    os.replace(staging, final)
    return final


def load_bundle(path: Path) -> Bundle:
    manifest = json.loads((path / MANIFEST).read_text())
    with open(path / ITEMS, "rb") as lines:
        items = [orjson.loads(line) for line in lines]
    with np.load(path / ARRAYS, allow_pickle=False) as arrays:
        return Bundle(
            version=manifest["version"],
            manifest=manifest,
            items=items,
            item_factors=arrays["item_factors"],
            gram=arrays["gram"],
            trending=arrays["trending"],
            trending_scores=arrays["trending_scores"],
            together=SparseRows(
                arrays["together_indptr"], arrays["together_indices"], arrays["together_scores"]
            ),
            item_item=SparseRows(
                arrays["item_item_indptr"], arrays["item_item_indices"], arrays["item_item_values"]
            ),
            user_index=load_index(path / USER_INDEX),
            similar_index=load_index(path / SIMILAR_INDEX),
        )


def complete_bundles(models_dir: Path) -> list[Path]:
    """Complete bundles, newest first, ignoring staging folders and anything else."""
    if not models_dir.is_dir():
        return []
    versions = sorted(
        (
            entry.name
            for entry in models_dir.iterdir()
            if VERSION_PATTERN.match(entry.name) and (entry / MANIFEST).is_file()
        ),
        reverse=True,
    )
    return [models_dir / version for version in versions]


def newest_bundle_path(models_dir: Path) -> Path | None:
    bundles = complete_bundles(models_dir)
    return bundles[0] if bundles else None


def _fsync_tree(folder: Path) -> None:
    for entry in folder.iterdir():
        with open(entry, "rb") as handle:
            os.fsync(handle.fileno())
