"""Issue 21: the model's own pooling vs BERT's [CLS] pooler, MiniLM-L6 on Rotten Tomatoes.

    python bench/pooling.py --out /tmp/rt21 [--seeds 0,1] [--probe-epochs 3,20]

Runs (skipping any whose summary.json exists) `ftkit datasets rotten-tomatoes --n-train 2000`, then
per pooling (`model.pooling=cls`: the old head; `auto`: the folder's mean pooling + Normalize):
a linear probe on the frozen body (seed 0, 3 and 20 epochs) and a full fine-tune of 1 epoch per seed, every other
setting at ftkit's defaults. Writes bench/results/pooling.json: test accuracy with its 95%
bootstrap CI per run, and the paired bootstrap (1,000 resamples of the 1,000 test reviews,
numpy seed 0) of new minus old per pair of runs.
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

HERE = Path(__file__).resolve().parent
POOLINGS = ("cls", "auto")


def ftkit(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    subprocess.run([sys.executable, "-m", "ftkit.cli", *args], check=True, env=env)


def fit(data: Path, out: Path, pooling: str, *extra: str) -> Path:
    if not (out / "summary.json").is_file():
        ftkit("fit", "--model", "minilm-l6", "--train", str(data / "train.csv"), "--test", str(data / "test.csv"),
              "--set", f"model.pooling={pooling}", "--out", str(out), "--quiet", *extra)
    return out


def record(run: Path) -> dict:
    s = json.loads((run / "summary.json").read_text())
    test = s["metrics"]["test"]
    return {"run": str(run), "strategy": s["strategy"], "seed": s["seed"], "precision": s["precision"],
            "test_accuracy": test["accuracy"], "ci95": test["ci"]["accuracy"], "macro_f1": test["macro_f1"],
            "train_seconds": s["timing"].get("train_seconds"), "total_seconds": s["timing"].get("total_seconds"),
            "pooling": json.loads((run / "model" / "ftkit.json").read_text()).get("text_pooling")}


def paired(old: Path, new: Path, n_boot: int = 1000) -> dict:
    """New minus old accuracy on the same test rows, with a paired bootstrap 95% CI (points)."""
    a, b = (pd.read_csv(r / "predictions.csv").sort_values("row") for r in (old, new))
    right_a = (a["predicted"] == a["label"]).to_numpy(float)
    right_b = (b["predicted"] == b["label"]).to_numpy(float)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(right_a), size=(n_boot, len(right_a)))
    diffs = (right_b[idx] - right_a[idx]).mean(axis=1) * 100
    return {"gain_points": float((right_b - right_a).mean() * 100),
            "ci95_points": [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--probe-epochs", default="3,20")
    args = p.parse_args()
    data = args.out / "data" / "rotten-tomatoes"
    if not (data / "train.csv").is_file():
        ftkit("datasets", "rotten-tomatoes", "--out", str(args.out / "data"), "--n-train", "2000")
    pairs = {f"probe-{e}ep": [fit(data, args.out / f"probe{e}-{p}", p, "--strategy", "linear-probe", "--epochs", e,
                                  "--seed", "0") for p in POOLINGS] for e in args.probe_epochs.split(",")}
    for seed in args.seeds.split(","):
        pairs[f"full-seed{seed}"] = [fit(data, args.out / f"full-{p}-s{seed}", p, "--epochs", "1", "--seed", seed)
                                     for p in POOLINGS]
    results = {name: {"cls": record(old), "own": record(new), "paired": paired(old, new)}
               for name, (old, new) in pairs.items()}
    (HERE / "results" / "pooling.json").write_text(json.dumps(results, indent=2))
    print(json.dumps({k: {"cls": v["cls"]["test_accuracy"], "own": v["own"]["test_accuracy"], **v["paired"]}
                      for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
