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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
import orjson

from models.index import load_index, save_index

MANIFEST = "manifest.json"
ITEMS = "items.jsonl"
ARRAYS = "arrays.npz"
USER_INDEX = "user_index.faiss"
SIMILAR_INDEX = "similar_index.faiss"
FORMAT_VERSION = 1
VERSION_PATTERN = re.compile(r"^\d{8}T\d{6}\d{6}Z-[0-9a-f]{6}$")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


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
    item_factors: FloatArray
    gram: FloatArray  # YtY + regularisation * I, ready for the fold-in solve
    trending: IntArray  # item indices, most trending first
    trending_scores: FloatArray
    together_indptr: IntArray  # CSR rows: items bought together with each item
    together_indices: IntArray
    together_scores: FloatArray
    user_index: faiss.Index  # inner product on raw factors: user-to-item scores
    similar_index: faiss.Index  # inner product on unit factors: item-to-item cosine
    index_of: dict[str, int] = field(init=False)
    unit_factors: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        self.index_of = {item["item_id"]: i for i, item in enumerate(self.items)}
        norms = np.linalg.norm(self.item_factors, axis=1, keepdims=True)
        self.unit_factors = (self.item_factors / np.maximum(norms, 1e-12)).astype(np.float32)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def bought_together(self, index: int) -> tuple[IntArray, FloatArray]:
        start, end = self.together_indptr[index], self.together_indptr[index + 1]
        return self.together_indices[start:end], self.together_scores[start:end]


def save_bundle(bundle: Bundle, models_dir: Path) -> Path:
    """Write `bundle` under `models_dir/<version>` atomically and return that path."""
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
        together_indptr=bundle.together_indptr,
        together_indices=bundle.together_indices,
        together_scores=bundle.together_scores,
    )
    save_index(bundle.user_index, staging / USER_INDEX)
    save_index(bundle.similar_index, staging / SIMILAR_INDEX)
    manifest = {**bundle.manifest, "version": bundle.version, "format": FORMAT_VERSION}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    _fsync_tree(staging)
    os.replace(staging, final)
    return final


def load_bundle(path: Path) -> Bundle:
    manifest = json.loads((path / MANIFEST).read_text())
    with open(path / ITEMS, "rb") as lines:
        items = [orjson.loads(line) for line in lines]
    with np.load(path / ARRAYS) as arrays:
        return Bundle(
            version=manifest["version"],
            manifest=manifest,
            items=items,
            item_factors=arrays["item_factors"],
            gram=arrays["gram"],
            trending=arrays["trending"],
            trending_scores=arrays["trending_scores"],
            together_indptr=arrays["together_indptr"],
            together_indices=arrays["together_indices"],
            together_scores=arrays["together_scores"],
            user_index=load_index(path / USER_INDEX),
            similar_index=load_index(path / SIMILAR_INDEX),
        )


def newest_bundle_path(models_dir: Path) -> Path | None:
    """The newest complete bundle, ignoring staging folders and anything else."""
    if not models_dir.is_dir():
        return None
    versions = sorted(
        entry.name
        for entry in models_dir.iterdir()
        if VERSION_PATTERN.match(entry.name) and (entry / MANIFEST).is_file()
    )
    return models_dir / versions[-1] if versions else None


def _fsync_tree(folder: Path) -> None:
    for entry in folder.iterdir():
        with open(entry, "rb") as handle:
            os.fsync(handle.fileno())
