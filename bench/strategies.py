"""What to freeze, measured: every strategy on the same data, budget and seed, plus the linear
probe's speed against one epoch of full fine-tuning.

1. Linear probe vs full, on the demo data (Rotten Tomatoes, 5,000 training reviews, 10% held out
   for validation): one epoch of `full`, then `linear-probe` with an empty feature cache (features
   computed: the first run's cost) and again with the cache filled (what every later run pays).
2. `ftkit compare` over every registered strategy on Rotten Tomatoes 2,000 reviews (the split of
   bench/fit_vs_trainer.py), 2 epochs, batch 16, seed 0, each strategy at its default lr.

    .venv/bin/python bench/strategies.py [--out bench/out] [--skip-compare]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def fit(data: dict, out: Path, strategy: str, epochs: int, env: dict) -> dict:
    cmd = [sys.executable, "-m", "ftkit.cli", "fit", "--model", "minilm-l6", "--train", str(data["train"]),
           "--test", str(data["test"]), "--strategy", strategy, "--epochs", str(epochs), "--seed", "0",
           "--out", str(out), "--overwrite", "--quiet"]
    subprocess.run(cmd, check=True, env=env)
    s = json.loads((out / "summary.json").read_text())
    t = s["timing"]
    return {"strategy": strategy, "epochs": epochs, "test_accuracy": s["metrics"]["test"]["accuracy"],
            "train_seconds": t["train_seconds"], "feature_seconds": t.get("feature_seconds"),
            "head_seconds": t.get("head_seconds"), "cache": s.get("probe", {}).get("cache")}


def probe_speed(out: Path) -> dict:
    from ftkit.datasets import rotten_tomatoes

    data = rotten_tomatoes(out / "rotten-tomatoes-5000", n_train=5000)
    cache = out / "feature-cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = {**ENV, "FTKIT_CACHE_DIR": str(cache)}
    full = fit(data, out / "speed-full", "full", 1, env)
    cold = fit(data, out / "speed-probe-cold", "linear-probe", 3, env)
    warm = fit(data, out / "speed-probe-warm", "linear-probe", 3, env)
    return {"full_1_epoch": full, "linear_probe_cold": cold, "linear_probe_warm": warm,
            "speedup_cold": round(full["train_seconds"] / cold["train_seconds"], 1),
            "speedup_warm": round(full["train_seconds"] / warm["train_seconds"], 1)}


def compare(out: Path) -> Path:
    from ftkit.datasets import rotten_tomatoes
    from ftkit.strategies import STRATEGIES, get_strategy

    get_strategy("full")
    data = rotten_tomatoes(out / "rotten-tomatoes-2000", n_train=2000)
    env = {**ENV, "FTKIT_CACHE_DIR": str(out / "feature-cache")}
    cmd = [sys.executable, "-m", "ftkit.cli", "compare", "--strategies", ",".join(STRATEGIES.names()),
           "--model", "minilm-l6", "--train", str(data["train"]), "--test", str(data["test"]),
           "--epochs", "2", "--seed", "0", "--out", str(out / "compare-rt2000-all")]
    subprocess.run(cmd, check=True, env=env)
    return out / "compare-rt2000-all" / "comparison.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--skip-compare", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"when": time.strftime("%Y-%m-%d %H:%M"), "probe_speed": probe_speed(args.out)}
    print(json.dumps(report, indent=2))
    results = HERE / "results"
    (results / "linear_probe_speed.json").write_text(json.dumps(report, indent=2))
    if not args.skip_compare:
        table = compare(args.out)
        shutil.copy(table, results / "compare_rt2000_all.csv")
        print(table.read_text())


if __name__ == "__main__":
    main()
