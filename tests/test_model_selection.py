"""train picks its model on validation, and an item-item model reacts to clicks live."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from fastapi.testclient import TestClient

from models.bundle import Bundle, load_bundle
from server.app import create_app
from settings import Settings
from tests.conftest import TEST_STORE
from tests.helpers import categories_of, items_in, recommend, send
from training.interactions import InteractionLog
from training.train import TrainOptions, train_bundle

SELECTION_SAMPLE = TEST_STORE.events // 4


@pytest.fixture(scope="module")
def auto_bundle(store_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    models = tmp_path_factory.mktemp("auto-models")
    # Compared on a sample of people, as a large store's models are.
    options = TrainOptions(model="auto", tune=False, selection_max_interactions=SELECTION_SAMPLE)
    return load_bundle(
        train_bundle(store_dir / "events.jsonl.gz", store_dir / "catalog.jsonl.gz", models, options)
    )


@pytest.fixture(scope="module")
def ease_models(store_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("ease-models")
    options = TrainOptions(model="ease", tune=False)
    train_bundle(store_dir / "events.jsonl.gz", store_dir / "catalog.jsonl.gz", models, options)
    return models


def test_train_serves_the_model_that_wins_on_validation(auto_bundle: Bundle) -> None:
    selection = auto_bundle.manifest["selection"]
    assert set(selection) == {"als", "ease", "itemknn"}
    scores = {name: entry["confirmed_ndcg@10"] for name, entry in selection.items()}
    assert all(0 < score < 1 for score in scores.values())
    assert all(0 < entry["validation_ndcg@10"] < 1 for entry in selection.values())
    assert auto_bundle.model == max(scores, key=lambda name: scores[name])
    assert (
        auto_bundle.manifest["params"][auto_bundle.model] == selection[auto_bundle.model]["params"]
    )


def test_models_are_compared_on_a_sample_of_whole_people(auto_bundle: Bundle) -> None:
    compared_on, rows = auto_bundle.manifest["selection_compared_on"], auto_bundle.manifest["rows"]
    assert SELECTION_SAMPLE * 0.9 <= compared_on["interactions"] <= SELECTION_SAMPLE
    assert compared_on["interactions"] < rows["interactions"]
    assert 0 < compared_on["people"] < rows["people"]
    assert compared_on["tuned_on_interactions"] == 0  # no grid search asked for


def _log(rows_per_person: list[int]) -> InteractionLog:
    people = np.repeat(np.arange(len(rows_per_person)), rows_per_person)
    n = len(people)
    return InteractionLog(
        people, np.arange(n) % 7, np.ones(n, np.float32), np.arange(n, dtype=np.float64),
        [f"v:{p}" for p in range(len(rows_per_person))], 7, sp.csr_matrix((0, 7)), n,
    )  # fmt: skip


def test_a_people_sample_keeps_whole_histories_within_the_cap() -> None:
    sizes = [1 + (p * 37) % 50 for p in range(400)] + [5_000]  # the last: over the cap
    log = _log(sizes)
    sample = log.sample_people(2_000, seed=3)
    assert 1_900 <= len(sample) <= 2_000
    assert sample.n_people == len(np.unique(sample.people)) < len(sizes)
    assert "v:400" not in sample.person_ids
    for n, person in enumerate(sample.person_ids):  # renumbered, histories whole
        original = int(person.removeprefix("v:"))
        assert np.array_equal(sample.items[sample.people == n], log.items[log.people == original])
    assert log.sample_people(2_000, seed=3).person_ids == sample.person_ids
    assert log.sample_people(2_000, seed=4).person_ids != sample.person_ids
    assert log.sample_people(len(log), seed=3) is log


@pytest.fixture
def ease_client(settings: Settings, ease_models: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"models_dir": ease_models}))) as client:
        yield client


def test_an_item_item_model_reacts_to_the_latest_clicks(
    ease_client: TestClient, ease_models: Path, visitor_id: str
) -> None:
    version = ease_client.get("/readyz").json()["model_version"]
    bundle = load_bundle(ease_models / version)
    assert bundle.model == "ease" and not bundle.item_item.is_empty
    for n, category in enumerate(sorted({item["category"] for item in bundle.items})[:6]):
        visitor = f"{visitor_id}-{n}"
        viewed = items_in(bundle, category)[:3]
        send(ease_client, *[{"type": "view", "visitor_id": visitor, "item_id": i} for i in viewed])
        after = recommend(ease_client, visitor_id=visitor, limit=10)
        assert after["strategy"] == "personal" and after["model_version"] == version
        assert categories_of(bundle, after)[category] > 5, (category, categories_of(bundle, after))
        titles = {bundle.items[bundle.index_of[i]]["title"] for i in viewed}
        assert all(any(t in item["reason"] for t in titles) for item in after["items"])
