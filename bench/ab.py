"""One change measured alone: `ftkit fit` with settings A and with settings B, on the same data and
seeds, interleaved (A seed 0, B seed 0, A seed 1, ...), so load from other work hits both alike.

For each seed it records both runs' test metric with its 95% CI (from summary.json) and the paired
difference B - A with a 95% CI from a paired bootstrap over the test rows (predictions.csv: the
same rows, resampled together); over the seeds, the mean difference and the seeds' spread.

    .venv/bin/python bench/ab.py --name soup --a train.average=none --b train.average=greedy-soup \\
        --seeds 0,1,2 --dataset rotten-tomatoes --n-train 2000 -- --model minilm-l6

Arguments after `--` go to every `ftkit fit` (both arms). Results: bench/results/ab-NAME.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
FTKIT = [sys.executable, "-m", "ftkit.cli"]


def sets(arm: str) -> list[str]:
    """"k=v,k2=v2" -> ["--set", "k=v", "--set", "k2=v2"] ("" -> no settings: the defaults)."""
    return [x for kv in filter(None, arm.split(",")) for x in ("--set", kv)]


def fit(out: Path, data: dict, seed: int, arm: str, extra: list[str]) -> dict:
    if not (out / "summary.json").is_file():
        subprocess.run([*FTKIT, "fit", "--train", str(data["train"]), "--test", str(data["test"]), "--seed", str(seed),
                        "--out", str(out), "--overwrite", "--quiet", *sets(arm), *extra], check=True, env=ENV)
    return json.loads((out / "summary.json").read_text())


def correct(run: Path, metric: str) -> np.ndarray:
    """Per test row: 1 when the prediction is right (accuracy), else the row's squared error (rmse)."""
    frame = pd.read_csv(run / "predictions.csv")
    if not pd.api.types.is_numeric_dtype(frame["predicted"]):
        return (frame["predicted"].astype(str) == frame["label"].astype(str)).to_numpy(float)
    return -((frame["predicted"].astype(float) - frame["label"].astype(float)) ** 2).to_numpy()


def paired_ci(a: np.ndarray, b: np.ndarray, seed: int = 0, n: int = 2000) -> list[float]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n, len(a)))
    diffs = b[idx].mean(axis=1) - a[idx].mean(axis=1)
    return [round(float(np.percentile(diffs, 2.5)), 4), round(float(np.percentile(diffs, 97.5)), 4)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--a", default="", help="settings of arm A, k=v,k=v (empty: the defaults)")
    ap.add_argument("--b", required=True, help="settings of arm B")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--dataset", default="rotten-tomatoes")
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--metric", default="accuracy")
    ap.add_argument("extra", nargs="*", help="after --: flags for every fit")
    args = ap.parse_args()
    work = HERE / "work" / "ab" / args.name
    data_dir = work.parent / "data" / f"{args.dataset}-{args.n_train}"
    if not (data_dir / args.dataset / "test.csv").is_file():
        subprocess.run([*FTKIT, "datasets", args.dataset, "--out", str(data_dir), "--n-train", str(args.n_train)],
                       check=True, env=ENV)
    data = {k: data_dir / args.dataset / f"{k}.csv" for k in ("train", "test")}
    rows = []
    for seed in map(int, args.seeds.split(",")):
        runs = {arm: work / f"{arm}-seed{seed}" for arm in ("a", "b")}
        result = {arm: fit(runs[arm], data, seed, getattr(args, arm), args.extra) for arm in ("a", "b")}
        ca, cb = correct(runs["a"], args.metric), correct(runs["b"], args.metric)
        row = {"seed": seed, **{arm: {"test": result[arm]["metrics"]["test"][args.metric],
                                      "ci": result[arm]["metrics"]["test"].get("ci", {}).get(args.metric),
                                      "train_seconds": result[arm]["timing"]["train_seconds"],
                                      "average": result[arm].get("average")} for arm in ("a", "b")},
               "b_minus_a": round(float(cb.mean() - ca.mean()), 4), "b_minus_a_ci": paired_ci(ca, cb, seed)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    diffs = [r["b_minus_a"] for r in rows]
    out = {"name": args.name, "a": args.a, "b": args.b, "dataset": args.dataset, "n_train": args.n_train,
           "extra": args.extra, "metric": args.metric, "runs": rows,
           "mean_a": round(statistics.mean(r["a"]["test"] for r in rows), 4),
           "mean_b": round(statistics.mean(r["b"]["test"] for r in rows), 4),
           "mean_b_minus_a": round(statistics.mean(diffs), 4),
           "sd_b_minus_a": round(statistics.stdev(diffs), 4) if len(diffs) > 1 else None}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"ab-{args.name}.json").write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
