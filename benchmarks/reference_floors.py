"""Encore against the product owner's reference floors, beside the project's own, in one run.

`../shared/bench/` holds the floors the performance targets are stated against:
`ideal_request.py` (a five-read pipeline, an HNSW search over 100k random vectors, an
ONNX tree score, orjson, as plain ASGI) and `floor_app.py` (a bare FastAPI endpoint).
The project's benchmarks carry floors of their own (`benchmarks/ideal_app.py`,
`benchmarks/floor_app.py`) so that anyone can re-run them without that folder; this
script serves all five on one Valkey, two uvicorn workers each, and drives each with
the same wrk settings in turn, so the two kinds of floor can be compared with each other
and Encore with both:

    .venv/bin/python -m benchmarks.reference_floors --reference ../shared/bench

The reference ideal request's index and model are built once under
`var/bench/reference-ideal/` by its own `build` command.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from benchmarks.recommendation_floors import (
    add_store_arguments,
    bundle_for,
    encore_command,
    measure_servers,
    report,
    uvicorn_command,
)
from server.inprocess import free_port

BUILT = Path("var/bench/reference-ideal")
ENCORE = "encore"
OWN_WORK, REFERENCE_WORK = "work floor (ours)", "work floor (reference)"
OWN_FRAMEWORK, REFERENCE_FRAMEWORK = "framework floor (ours)", "framework floor (reference)"


def build_reference(reference: Path) -> Path:
    """The reference ideal request's HNSW index and ONNX model, built on first use."""
    if not (BUILT / "items.faiss").is_file() or not (BUILT / "gbt.onnx").is_file():
        subprocess.run(
            [sys.executable, str(reference / "ideal_request.py"), "build", str(BUILT)], check=True
        )
    return BUILT


def reference_ideal(workers: int, port: int, reference: Path, built: Path) -> list[str]:
    """The reference app reads its Redis from IDEAL_REDIS_URL: point it at the run's
    Valkey, which the servers are handed as ENCORE_BENCH_REDIS."""
    shell = f'IDEAL_DIR="{built.resolve()}" IDEAL_REDIS_URL="$ENCORE_BENCH_REDIS" exec "$@"'
    served = uvicorn_command(workers, port, "ideal_request:app", reference)
    return ["sh", "-c", shell, "sh", *served]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_store_arguments(parser)
    parser.add_argument("--reference", type=Path, default=Path("../shared/bench"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("var/bench/reference_floors.json"))
    args = parser.parse_args()
    reference = args.reference.resolve()
    built = build_reference(reference)
    store, models, bundle = bundle_for(args)
    names = (ENCORE, OWN_WORK, REFERENCE_WORK, OWN_FRAMEWORK, REFERENCE_FRAMEWORK)
    ports = {name: free_port() for name in names}
    commands = {
        ENCORE: encore_command(ports[ENCORE], args.workers),
        OWN_WORK: uvicorn_command(args.workers, ports[OWN_WORK], "benchmarks.ideal_app:app"),
        REFERENCE_WORK: reference_ideal(args.workers, ports[REFERENCE_WORK], reference, built),
        OWN_FRAMEWORK: uvicorn_command(
            args.workers, ports[OWN_FRAMEWORK], "benchmarks.floor_app:app"
        ),
        REFERENCE_FRAMEWORK: uvicorn_command(
            args.workers, ports[REFERENCE_FRAMEWORK], "floor_app:app", reference
        ),
    }
    summary, runs = measure_servers(commands, ports, store, models, bundle, args)
    report(args, summary, runs, ENCORE, reference=str(reference))


if __name__ == "__main__":
    main()
