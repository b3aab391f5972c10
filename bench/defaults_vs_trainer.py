"""Default `ftkit fit` against Hugging Face `Trainer` defaults at equal data, over several seeds.

Rotten Tomatoes, N training reviews (2,000 unless told), tested on the anchor's 1,000 reviews. Trainer:
bench/trainer_peer.py (the anchor with the seed as argument): its defaults, 3 epochs, batch 16, lr 5e-5,
fp32. ftkit: `ftkit fit` with its defaults (3 epochs, the model's own pooling, precision auto, ...) and
`data.validation_size=0`, so both train on the same reviews and neither holds any out. Runs are
interleaved (Trainer seed 0, ftkit seed 0, Trainer seed 1, ...). Per seed: both test accuracies and
the paired difference ftkit - Trainer with a 95% bootstrap CI over the same test reviews.

    .venv/bin/python bench/defaults_vs_trainer.py --seeds 0,1,2 [--n-train 2000] [--out bench/out/defaults] [--set K=V ...]

Results: bench/results/defaults_vs_trainer.json.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ab import correct, paired_ci  # bench/ab.py: per-row correctness, paired bootstrap over the same rows

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def trainer(n_train: int, seed: int, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    preds = out / "predictions.csv"
    done = out / "result.json"
    if not done.is_file():
        run = subprocess.run([sys.executable, str(HERE / "trainer_peer.py"), str(n_train), "3", str(seed), str(preds)],
                             capture_output=True, text=True, env=ENV, cwd="/tmp")
        m = re.search(r"acc=([\d.]+) train_s=([\d.]+) samples_per_s=([\d.]+)", run.stdout)
        if not m:
            raise SystemExit(f"Trainer failed:\n{run.stdout[-1500:]}\n{run.stderr[-1500:]}")
        done.write_text(json.dumps({"accuracy": float(m[1]), "train_seconds": float(m[2]),
                                    "samples_per_second": float(m[3])}))
    return json.loads(done.read_text())


def ftkit(data: dict, seed: int, out: Path, settings: list[str]) -> dict:
    if not (out / "summary.json").is_file():
        extra = [arg for s in settings for arg in ("--set", s)]
        subprocess.run([sys.executable, "-m", "ftkit.cli", "fit", "--model", "minilm-l6", "--train", str(data["train"]),
                        "--test", str(data["test"]), "--seed", str(seed), "--set", "data.validation_size=0", *extra,
                        "--out", str(out), "--overwrite", "--quiet"], check=True, env=ENV)
    s = json.loads((out / "summary.json").read_text())
    return {"accuracy": s["metrics"]["test"]["accuracy"], "train_seconds": s["timing"]["train_seconds"],
            "samples_per_second": s["timing"]["samples_per_second"], "precision": s["precision"]}


def right(run: Path, texts: pd.Series) -> np.ndarray:
    """1 per test review predicted right, 0 otherwise, after checking both runs list the same reviews."""
    if not pd.read_csv(run / "predictions.csv")["text"].astype(str).reset_index(drop=True).equals(texts):
        raise SystemExit(f"{run}/predictions.csv: test rows differ from the test set's order")
    return correct(run, "accuracy")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "defaults")
    ap.add_argument("--set", dest="settings", action="append", default=[],
                    help="an ftkit setting on top of the defaults (repeatable), to measure one change against Trainer")
    args = ap.parse_args()
    tag = "".join(f"-{s.replace('=', '_')}" for s in args.settings)
    from ftkit.datasets import rotten_tomatoes

    data = rotten_tomatoes(args.out / "data", n_train=args.n_train)
    texts = pd.read_csv(data["test"])["text"].astype(str).reset_index(drop=True)
    rows = []
    for seed in map(int, args.seeds.split(",")):
        t = trainer(args.n_train, seed, args.out / f"trainer-s{seed}")
        f = ftkit(data, seed, args.out / f"ftkit{tag}-s{seed}", args.settings)
        a = right(args.out / f"trainer-s{seed}", texts)
        b = right(args.out / f"ftkit{tag}-s{seed}", texts)
        rows.append({"seed": seed, "trainer": t, "ftkit": f,
                     "ftkit_minus_trainer_points": round(100 * (b.mean() - a.mean()), 1), "paired_95ci_points": [round(100 * x, 1) for x in paired_ci(a, b)]})
        print(json.dumps(rows[-1]), flush=True)
    gains = [r["ftkit_minus_trainer_points"] for r in rows]
    report = {"when": time.strftime("%Y-%m-%d %H:%M"), "n_train": args.n_train, "ftkit_settings": args.settings, "cpus": os.cpu_count(), "seeds": rows,
              "mean_gain_points": round(statistics.mean(gains), 2), "min_gain_points": min(gains),
              "trainer_mean_accuracy": round(statistics.mean(r["trainer"]["accuracy"] for r in rows), 4),
              "ftkit_mean_accuracy": round(statistics.mean(r["ftkit"]["accuracy"] for r in rows), 4)}
    path = HERE / "results" / f"defaults_vs_trainer_{args.n_train}{tag}.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "seeds"}, indent=2))


if __name__ == "__main__":
    main()
