"""Regression on real data (issue 22): MiniLM-L6 predicting how long an Asterisk prompt's recording
lasts from its transcript (`ftkit datasets asterisk-durations`), against its baselines.

Runs (unless --collect-only) and then reads, per seed, the default `ftkit fit ... --baseline probe`
(which also lists predicting the training mean and fits the ridge probe on cached frozen features),
and optionally `--baseline scratch` for the first seed. Writes bench/results/asterisk_durations.json:
test rmse / mae / r2 / spearman / pearson with 95% bootstrap CIs for the fine-tuned model, the ridge
probe, the training mean and a per-language least-squares line through the word count (a reference
no model sees: what the length of the text alone explains), and paired bootstrap CIs of the rmse
and r2 gains of the fine-tuned model over each (the same 461 test rows, resampled together).

    .venv/bin/python bench/regression.py [--seeds 0 1 2] [--scratch] [--collect-only] [--out bench/out]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ftkit.evaluation.bootstrap import bootstrap_ci
from ftkit.evaluation.regression_metrics import regression_ci, regression_metrics, regression_scorer

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
KEYS = ("rmse", "mae", "r2", "spearman", "pearson")
N_BOOT = 1000


def fit(data: Path, out: Path, seed: int, baseline: str) -> None:
    cmd = [sys.executable, "-m", "ftkit.cli", "fit", "--model", "minilm-l6", "--train", str(data / "train.csv"),
           "--test", str(data / "test.csv"), "--label-column", "seconds", "--label-type", "number",
           "--set", "data.max_length=512", "--seed", str(seed), "--baseline", baseline, "--out", str(out), "--quiet"]
    subprocess.run(cmd, check=True, env=ENV)


def scored(pred: np.ndarray, target: np.ndarray) -> dict:
    m = regression_metrics(pred, target)
    return {**{k: m[k] for k in KEYS}, "ci": {k: v for k, v in regression_ci(pred, target, N_BOOT).items() if k in KEYS}}


def paired_gain(ours: np.ndarray, theirs: np.ndarray, target: np.ndarray) -> dict:
    """rmse lowered and r2 gained by `ours` over `theirs`, with paired 95% bootstrap CIs."""
    a, b = regression_scorer(ours, target), regression_scorer(theirs, target)

    def gain(idx: np.ndarray) -> dict:
        x, y = a(idx), b(idx)
        return {"rmse_lowered": y["rmse"] - x["rmse"], "r2_gained": x["r2"] - y["r2"]}

    point = gain(np.arange(len(target)))
    ci = bootstrap_ci(gain, len(target), N_BOOT, 0.95, 0)
    return {k: {"value": round(float(v), 4), "ci": ci[k]} for k, v in point.items()}


def word_line(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Per language, seconds ~ a + b * words by least squares on train.csv; predicted for test."""
    pred = np.zeros(len(test))
    for lang, rows in test.groupby("language"):
        fitted = train[train.language == lang]
        b, a = np.polyfit(fitted.text.str.split().str.len(), fitted.seconds, 1)
        pred[test.index.get_indexer(rows.index)] = a + b * rows.text.str.split().str.len()
    return pred


def by_length(predictions: dict[str, np.ndarray], target: np.ndarray, cut: float = 5.0) -> dict:
    """rmse and mae of each predictor on the prompts shorter than `cut` seconds and on the rest."""
    out = {}
    for part, mask in ((f"under_{cut:g}s", target < cut), (f"from_{cut:g}s", target >= cut)):
        out[part] = {"n": int(mask.sum()), **{who: {"rmse": round(float(np.sqrt(np.mean((p[mask] - target[mask]) ** 2))), 4),
                                                   "mae": round(float(np.mean(np.abs(p[mask] - target[mask]))), 4)}
                                              for who, p in predictions.items()}}
    return out


def one_seed(run: Path, train: pd.DataFrame, words: np.ndarray) -> dict:
    s = json.loads((run / "summary.json").read_text())
    ours = pd.read_csv(run / "predictions.csv")
    ridge = pd.read_csv(run / "baselines" / "probe" / "predictions.csv")
    assert ours.label.tolist() == ridge.label.tolist()
    target = ours.label.to_numpy(float)
    mean = np.full(len(target), s["metrics"]["test"]["mean_baseline"]["prediction"])
    probe = json.loads((run / "baselines" / "probe" / "summary.json").read_text())
    return {"run": str(run), "seed": s["seed"], "finetuned": scored(ours.predicted.to_numpy(float), target),
            "ridge_probe": {**scored(ridge.predicted.to_numpy(float), target), "alpha": probe["method"]["alpha"],
                            "train_seconds": probe["timing"]["train_seconds"]},
            "mean": scored(mean, target),
            "gain_over_ridge": paired_gain(ours.predicted.to_numpy(float), ridge.predicted.to_numpy(float), target),
            "gain_over_mean": paired_gain(ours.predicted.to_numpy(float), mean, target),
            "best_epoch": s["best"]["epoch"], "epochs": s["hyperparameters"]["epochs"], "lr": s["hyperparameters"]["lr"],
            "train_seconds": s["timing"]["train_seconds"], "samples_per_second": s["timing"]["samples_per_second"],
            "data": s["data"], "verdict": s["baselines"]["verdict"],
            "by_length": by_length({"finetuned": ours.predicted.to_numpy(float), "ridge_probe": ridge.predicted.to_numpy(float),
                                    "word_count_line": words}, target),
            "scratch": _scratch(run, target)}


def _scratch(run: Path, target: np.ndarray) -> dict | None:
    folder = run / "baselines" / "scratch"
    if not (folder / "summary.json").is_file():
        return None
    s = json.loads((folder / "summary.json").read_text())
    test = s["metrics"]["test"]
    return {**{k: test[k] for k in KEYS}, "ci": {k: test["ci"][k] for k in KEYS if k in test["ci"]},
            "train_seconds": s["timing"]["train_seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--scratch", action="store_true", help="also --baseline scratch for the first seed")
    ap.add_argument("--collect-only", action="store_true")
    args = ap.parse_args()
    data = args.out / "asterisk-durations"
    if not args.collect_only:
        from ftkit.datasets import asterisk_durations

        asterisk_durations(data)
        for i, seed in enumerate(args.seeds):
            fit(data, args.out / f"durations-s{seed}", seed, "probe,scratch" if args.scratch and i == 0 else "probe")
    train, test = pd.read_csv(data / "train.csv"), pd.read_csv(data / "test.csv")
    words = word_line(train, test)  # test.csv's order, which predictions.csv keeps
    seeds = [one_seed(args.out / f"durations-s{seed}", train, words) for seed in args.seeds]
    result = {"data": {"train_csv": len(train), "test_csv": len(test), "languages": test.language.value_counts().to_dict(),
                       "test_seconds": test.seconds.describe().round(3).to_dict()},
              "word_count_line": scored(words, test.seconds.to_numpy(float)),
              "seeds": seeds,
              "across_seeds": {who: {k: [round(float(np.mean(v)), 4), round(float(np.std(v)), 4)] for k, v in
                                     {k: [s[who][k] for s in seeds] for k in KEYS}.items()}
                               for who in ("finetuned", "ridge_probe")}}
    path = HERE / "results" / "asterisk_durations.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["across_seeds"], indent=1), "\n", path)


if __name__ == "__main__":
    main()
