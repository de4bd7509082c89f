"""`python -m training <job>`: the offline jobs (generate, load, export, train)."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from settings import get_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    jobs = parser.add_subparsers(dest="job", required=True)

    generate = jobs.add_parser("generate", help="write a synthetic store (catalog + events)")
    generate.add_argument("--out", type=Path, required=True)
    generate.add_argument("--items", type=int, default=2000)
    generate.add_argument("--visitors", type=int, default=5000, help="sets events per visitor")
    generate.add_argument("--events", type=int, default=200_000)
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--end", type=datetime.fromisoformat, default=None,
                          help="last day of history (ISO date); default today")  # fmt: skip

    load = jobs.add_parser("load", help="backfill Redis with a catalog and historical events")
    load.add_argument("--events", type=Path, required=True)
    load.add_argument("--catalog", type=Path, default=None)

    export = jobs.add_parser("export", help="write Redis's behaviour stream as an events file")
    export.add_argument("--out", type=Path, required=True)

    train = jobs.add_parser("train", help="train a new model bundle under MODELS_DIR")
    train.add_argument("--events", type=Path, required=True)
    train.add_argument("--catalog", type=Path, required=True)
    train.add_argument("--models-dir", type=Path, default=None, help="default: MODELS_DIR")
    train.add_argument("--factors", type=int, default=64)
    train.add_argument("--iterations", type=int, default=15)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # CPU-feature probing noise
    settings = get_settings()
    if args.job == "generate":
        from training.generate import StoreShape, generate_store

        shape = StoreShape(
            items=args.items, visitors=args.visitors, events=args.events, seed=args.seed
        )
        if args.end is not None:
            shape = StoreShape(**{**shape.__dict__, "end": args.end.replace(tzinfo=UTC)})
        _report(generate_store(args.out, shape))
    elif args.job == "load":
        from training.backfill import load_history

        _report(load_history(settings, args.events, args.catalog))
    elif args.job == "export":
        from training.backfill import export_history

        _report({"events": export_history(settings, args.out)})
    elif args.job == "train":
        from training.train import AlsParams, train_bundle

        params = AlsParams(factors=args.factors, iterations=args.iterations)
        path = train_bundle(
            args.events, args.catalog, args.models_dir or settings.models_dir, params
        )
        _report({"bundle": str(path), **json.loads((path / "manifest.json").read_text())["rows"]})


def _report(result: Mapping[str, object]) -> None:
    print(json.dumps(result))


if __name__ == "__main__":
    main()
