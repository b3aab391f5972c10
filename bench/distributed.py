"""`ftkit fit --workers N` (issue 19): samples/s and accuracy, 1 process vs 2 Ray Train workers.

Rotten Tomatoes (the split of bench/fit_vs_trainer.py), MiniLM-L6, full fine-tuning, the same
global batch (16), lr, seed and epochs in every configuration, fp32 so the numeric path is the
same. On this machine's cores:

  one-process   1 process, every core (train.threads = all)           the default path
  one-thread    1 process, 1 thread                                   what one worker has
  two-workers   2 Ray Train workers x 1 core (gloo), global batch 16  --workers 2

Each run is a fresh subprocess (`ftkit fit`), so the 2-worker time includes starting the local
Ray instance (reported apart: total vs training seconds).

    .venv/bin/python bench/distributed.py [--n-train 2000] [--epochs 1] [--out bench/out/distributed]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
CORES = os.cpu_count() or 1
CONFIGS = {
    "one-process": ["--set", f"train.threads={CORES}"],
    "one-thread": ["--set", "train.threads=1"],
    "two-workers": ["--set", "distributed.workers=2", "--set", "distributed.cpus_per_worker=1"],
}


def fit(data: dict, out: Path, extra: list[str], epochs: float) -> dict:
    cmd = [sys.executable, "-m", "ftkit.cli", "fit", "--model", "minilm-l6", "--train", str(data["train"]),
           "--test", str(data["test"]), "--epochs", str(epochs), "--batch-size", "16", "--seed", "0",
           "--out", str(out), "--overwrite", "--quiet", "--set", "train.precision=fp32",
           "--set", "eval.bootstrap=0", *extra]
    tick = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    wall = time.perf_counter() - tick
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    s = json.loads((out / "summary.json").read_text())
    return {"wall_seconds": round(wall, 1), "train_seconds": s["timing"]["train_seconds"],
            "samples_per_second": s["timing"]["samples_per_second"], "steps": s["timing"]["steps"],
            "test_accuracy": round(s["metrics"]["test"]["accuracy"], 4),
            "test_macro_f1": round(s["metrics"]["test"]["macro_f1"], 4),
            "distributed": s.get("distributed")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "distributed")
    parser.add_argument("--only", nargs="*", default=list(CONFIGS))
    args = parser.parse_args()
    from ftkit.datasets import rotten_tomatoes

    data = rotten_tomatoes(args.out / f"rotten-tomatoes-{args.n_train}", n_train=args.n_train)
    results = {}
    for name in args.only:
        results[name] = fit(data, args.out / name, CONFIGS[name], args.epochs)
        print(name, json.dumps(results[name]), flush=True)
    (args.out / "results.json").write_text(json.dumps({"cores": CORES, "n_train": args.n_train,
                                                       "epochs": args.epochs, "runs": results}, indent=1))


if __name__ == "__main__":
    main()
