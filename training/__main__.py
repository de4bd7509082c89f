"""`python -m training <job>`: the offline jobs (generate, load, export, train, evaluate)."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from settings import get_settings
from training.algorithms import FITTERS, SERVABLE

ALL_MODELS = tuple(FITTERS)


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
    train.add_argument("--model", choices=["auto", *SERVABLE], default="auto",
                       help="auto: the best on a validation split")  # fmt: skip
    train.add_argument("--no-tune", action="store_true", help="default settings, no grid search")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--no-churn", action="store_true", help="skip the churn and value models")
    train.add_argument("--selection-sample", type=int, default=None, metavar="N",
                       help="compare models on at most N interactions of whole people "
                            "(default 2,000,000)")  # fmt: skip

    evaluation = jobs.add_parser("evaluate", help="offline metrics on a train/test split")
    evaluation.add_argument("--events", type=Path, required=True)
    evaluation.add_argument("--catalog", type=Path, required=True)
    evaluation.add_argument("--out", type=Path, required=True)
    evaluation.add_argument("--split", choices=["random", "time"], default="random")
    evaluation.add_argument("--test-fraction", type=float, default=0.25)
    evaluation.add_argument(
        "--test-days", type=float, default=None, help="time split: hold out the last N days"
    )
    evaluation.add_argument("--seed", type=int, default=42)
    evaluation.add_argument("--k", default="10,20", help="comma-separated cut-offs")
    evaluation.add_argument("--models", default=",".join(ALL_MODELS))
    evaluation.add_argument(
        "--no-tune", action="store_true", help="default settings, no grid search"
    )

    churn = jobs.add_parser(
        "evaluate-churn", help="churn AUC, calibration and gain, customer value, on a hold-out"
    )
    churn.add_argument("--events", type=Path, required=True)
    churn.add_argument("--out", type=Path, required=True)

    doc = jobs.add_parser("evaluation-doc", help="write docs/evaluation.md from reports")
    doc.add_argument("--reports", type=Path, default=Path("docs/evaluation"))
    doc.add_argument("--out", type=Path, default=Path("docs/evaluation.md"))

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
        from models.bundle import MANIFEST
        from training.train import TrainOptions, train_bundle

        options = TrainOptions(
            model=args.model,
            tune=not args.no_tune,
            seed=args.seed,
            churn=not args.no_churn,
        )
        if args.selection_sample is not None:
            options = replace(options, selection_max_interactions=args.selection_sample)
        models_dir = args.models_dir or settings.models_dir
        path = train_bundle(args.events, args.catalog, models_dir, options)
        manifest = json.loads((path / MANIFEST).read_text())
        _report({"bundle": str(path), "model": manifest["model"], **manifest["rows"]})
    elif args.job == "evaluate":
        from training.evaluate import Protocol, evaluate

        protocol = Protocol(
            split=args.split,
            test_fraction=args.test_fraction,
            test_days=args.test_days,
            seed=args.seed,
            ks=tuple(int(k) for k in args.k.split(",")),
            models=tuple(args.models.split(",")),
            tune=not args.no_tune,
        )
        report = evaluate(args.events, args.catalog, protocol, args.out)
        headline = ("ndcg@10", "precision@10", "recall@20")
        _report({name: {k: row[k] for k in headline} for name, row in report["models"].items()})
    elif args.job == "evaluate-churn":
        from training.churn_eval import evaluate_churn
        from training.datafiles import read_events

        churn_report = evaluate_churn(read_events(args.events), args.out)
        _report({"churn": churn_report["churn"], "baselines": churn_report["baselines"]})
    elif args.job == "evaluation-doc":
        from training.evaluation_doc import write_evaluation_doc

        write_evaluation_doc(args.reports, args.out)


def _report(result: Mapping[str, object]) -> None:
    print(json.dumps(result))


if __name__ == "__main__":
    main()
