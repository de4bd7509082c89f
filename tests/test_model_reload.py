"""A newer bundle is served without a restart and without a failed request."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient

from models.bundle import newest_bundle_path
from server.app import create_app
from settings import Settings
from tests.conftest import PUBLIC, TEST_TRAINING
from training.train import train_bundle

DEADLINE_SECONDS = 30


def test_retraining_under_traffic_fails_no_request(
    client: TestClient, store_dir: Path, models_dir: Path
) -> None:
    old_version = client.get("/readyz").json()["model_version"]
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def traffic() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            response = client.get(
                "/v1/recommendations",
                params={"visitor_id": f"reload-{n % 7}", "placement": "home"},
                headers=PUBLIC,
            )
            statuses.append(response.status_code)
            if response.status_code == 200:
                versions.add(response.json()["model_version"])

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        new_path = train_bundle(
            store_dir / "events.jsonl.gz", store_dir / "catalog.jsonl.gz", models_dir, TEST_TRAINING
        )
        assert newest_bundle_path(models_dir) == new_path
        deadline = time.monotonic() + DEADLINE_SECONDS
        while new_path.name not in versions and time.monotonic() < deadline:
            stop.wait(0.05)  # the reload is asynchronous: wait for it, bounded
    finally:
        stop.set()
        worker.join()

    assert statuses and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    assert old_version in versions and new_path.name in versions
    assert client.get("/readyz").json()["model_version"] == new_path.name


def test_a_half_written_bundle_is_never_served(client: TestClient, models_dir: Path) -> None:
    served = client.get("/readyz").json()["model_version"]
    staging = models_dir / ".staging-99991231T000000000000Z-abcdef"
    staging.mkdir()
    (staging / "manifest.json").write_text("{")
    bogus = models_dir / "99991231T000000000000Z-abcdef"  # a version name, but no manifest
    bogus.mkdir()
    assert newest_bundle_path(models_dir) is not None
    assert newest_bundle_path(models_dir).name == served  # type: ignore[union-attr]
    response = client.get("/v1/recommendations?visitor_id=x", headers=PUBLIC)
    assert response.status_code == 200 and response.json()["model_version"] == served


def test_a_newer_bundle_that_does_not_load_is_skipped(settings: Settings, models_dir: Path) -> None:
    good = newest_bundle_path(models_dir)
    assert good is not None
    broken = models_dir / "99991231T000000000000Z-0badba"
    shutil.copytree(good, broken)
    (broken / "arrays.npz").write_bytes(b"not an npz file")
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["model_version"] == good.name
        response = client.get("/v1/recommendations?visitor_id=x", headers=PUBLIC)
        assert response.status_code == 200 and response.json()["model_version"] == good.name
