"""`evaluate-churn`: the churn and value models on a time-based hold-out, with plots.

The hold-out cutoff is 90 days before the history ends: everyone with an order before
it is scored with features from before it, and their next 90 days are the truth. The
models train on earlier cutoffs only, whose label windows close by the hold-out cutoff,
so nothing they learn has seen the hold-out period. Reported beside them: recency alone
and a logistic regression on the same features, the bars the model must clear.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import spearmanr

from models.churn import DAY, FEATURES, ChurnScorer
from training.churn import HORIZON, export_churn, fit_churn, replay, rolling_cutoffs, snapshots

CALIBRATION_BINS = 10


def evaluate_churn(events: Iterable[dict[str, Any]], out: Path) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    history = replay(events)
    holdout_cutoff = (history.last - HORIZON) // DAY * DAY
    train = snapshots(history, rolling_cutoffs(history.first, holdout_cutoff))
    test = snapshots(history, [holdout_cutoff])
    models = fit_churn(train)
    out.mkdir(parents=True, exist_ok=True)
    export_churn(models, out, {})
    scorer = ChurnScorer(out)  # score through ONNX, exactly as the server does
    risk = scorer.calibration.apply(scorer.raw_churn(test.features))
    spend = np.maximum(scorer.raw_value(test.features), 0.0)

    logistic = make_pipeline(
        FunctionTransformer(_signed_log), StandardScaler(), LogisticRegression(max_iter=2000)
    ).fit(train.features, train.churned)
    recency = test.features[:, FEATURES.index("recency_days")]
    report: dict[str, Any] = {
        "holdout_cutoff": holdout_cutoff,
        "train_rows": len(train.churned),
        "train_cutoffs": len(set(train.cutoffs.tolist())),
        "test_rows": len(test.churned),
        "test_churn_rate": float(test.churned.mean()),
        "churn": {
            "auc": float(roc_auc_score(test.churned, risk)),
            "average_precision": float(average_precision_score(test.churned, risk)),
            "brier": float(np.mean((risk - test.churned) ** 2)),
        },
        "baselines": {
            "recency_auc": float(roc_auc_score(test.churned, recency)),
            "logistic_regression_auc": float(
                roc_auc_score(test.churned, logistic.predict_proba(test.features)[:, 1])
            ),
        },
        "value": _value_errors(spend, test.next_spend),
    }
    _plot(test.churned, risk, spend, test.next_spend, out)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(_markdown(report))
    for name in (ChurnScorer.CHURN_FILE, ChurnScorer.VALUE_FILE, ChurnScorer.META_FILE):
        (out / name).unlink()
    return report


def _signed_log(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.sign(x) * np.log1p(np.abs(x))


def _value_errors(
    predicted: npt.NDArray[np.float32], actual: npt.NDArray[np.float32]
) -> dict[str, float]:
    """Against the actual spend of the 90 days after the cutoff (the regressor's target)."""
    mean_spend = float(actual.mean())
    return {
        "mae": float(np.abs(predicted - actual).mean()),
        "rmse": float(np.sqrt(((predicted - actual) ** 2).mean())),
        "mae_of_predicting_the_mean": float(np.abs(mean_spend - actual).mean()),
        "spearman": float(spearmanr(predicted, actual).statistic),
        "total_predicted": float(predicted.sum()),
        "total_actual": float(actual.sum()),
    }


def calibration_table(
    churned: npt.NDArray[np.int64], risk: npt.NDArray[np.float32], bins: int = CALIBRATION_BINS
) -> list[tuple[float, float, int]]:
    """(mean predicted, observed rate, rows) per equal-width bin of predicted risk."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(risk, edges[1:-1]), 0, bins - 1)
    table = []
    for b in range(bins):
        members = which == b
        if members.any():
            table.append((float(risk[members].mean()), float(churned[members].mean()),
                          int(members.sum())))  # fmt: skip
    return table


def gain_curve(
    churned: npt.NDArray[np.int64], risk: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Share of customers contacted (riskiest first) against share of churners reached."""
    order = np.argsort(-risk, kind="stable")
    reached = np.cumsum(churned[order]) / max(int(churned.sum()), 1)
    contacted = np.arange(1, len(order) + 1) / len(order)
    return np.concatenate([[0.0], contacted]), np.concatenate([[0.0], reached])


def _plot(
    churned: npt.NDArray[np.int64],
    risk: npt.NDArray[np.float32],
    spend: npt.NDArray[np.float32],
    actual: npt.NDArray[np.float32],
    out: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (calibration, gain, value) = plt.subplots(1, 3, figsize=(15, 4.5))
    table = calibration_table(churned, risk)
    calibration.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    calibration.plot([t[0] for t in table], [t[1] for t in table], "o-", label="model")
    calibration.set(xlabel="predicted churn risk", ylabel="observed churn rate",
                    title="Calibration (hold-out)")  # fmt: skip
    calibration.legend()
    contacted, reached = gain_curve(churned, risk)
    gain.plot(contacted, reached, label="model")
    gain.plot([0, 1], [0, 1], "--", color="grey", label="random")
    gain.set(xlabel="share of customers contacted (riskiest first)",
             ylabel="share of churners reached", title="Cumulative gain")  # fmt: skip
    lift_at = [0.1, 0.2, 0.3, 0.5]
    for share in lift_at:
        k = max(1, int(share * len(risk)))
        lift = reached[k] / share
        gain.annotate(f"lift {lift:.2f}", (share, reached[k]), fontsize=8)
    gain.legend()
    value.scatter(spend, actual, s=6, alpha=0.4)
    top = float(max(spend.max(initial=1.0), actual.max(initial=1.0)))
    value.plot([0, top], [0, top], "--", color="grey")
    value.set(xscale="symlog", yscale="symlog", xlabel="predicted 90-day spend",
              ylabel="actual 90-day spend", title="Customer value (hold-out)")  # fmt: skip
    fig.tight_layout()
    fig.savefig(out / "churn.png", dpi=110)
    plt.close(fig)


def _markdown(report: dict[str, Any]) -> str:
    churn, base, value = report["churn"], report["baselines"], report["value"]
    return "\n".join(
        [
            "# Churn and customer value on a time-based hold-out",
            "",
            f"Hold-out: {report['test_rows']} customers with an order before the cutoff "
            f"(90 days before the history ends); {report['test_churn_rate']:.1%} did not "
            f"order in the next 90 days. Trained on {report['train_rows']} snapshots from "
            f"{report['train_cutoffs']} earlier cutoffs.",
            "",
            "| churn | AUC | average precision | Brier |",
            "|---|---:|---:|---:|",
            f"| gradient-boosted trees, calibrated (ONNX) | {churn['auc']:.3f} | "
            f"{churn['average_precision']:.3f} | {churn['brier']:.3f} |",
            f"| logistic regression, same features | {base['logistic_regression_auc']:.3f} | | |",
            f"| recency alone | {base['recency_auc']:.3f} | | |",
            "",
            "| customer value (next 90 days) | |",
            "|---|---:|",
            f"| MAE | {value['mae']:.2f} |",
            f"| MAE of predicting the mean | {value['mae_of_predicting_the_mean']:.2f} |",
            f"| RMSE | {value['rmse']:.2f} |",
            f"| Spearman rank correlation | {value['spearman']:.3f} |",
            f"| total predicted / actual | {value['total_predicted']:.0f} / "
            f"{value['total_actual']:.0f} |",
            "",
            "![calibration, gain and value](churn.png)",
            "",
        ]
    )
