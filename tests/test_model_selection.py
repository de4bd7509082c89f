"""train picks its model on validation, and an item-item model reacts to clicks live."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models.bundle import Bundle, load_bundle
from server.app import create_app
from settings import Settings
from tests.helpers import categories_of, items_in, recommend, send
from training.train import TrainOptions, train_bundle


@pytest.fixture(scope="module")
def auto_bundle(store_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    models = tmp_path_factory.mktemp("auto-models")
    options = TrainOptions(model="auto", tune=False)
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
