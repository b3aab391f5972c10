"""`ftkit auto` against Hugging Face `Trainer` with default hyperparameters, same wall-clock budget.

Rotten Tomatoes (fresh vs rotten): the first 5,000 training reviews and the 1,000 held-out test
reviews of shared/bench/trainer_anchor.py's split (`ftkit datasets rotten-tomatoes --n-train 5000`
writes exactly those). First the Trainer anchor runs unchanged (`trainer_anchor.py 5000 3`: 3 epochs,
batch 16, lr 5e-5, fp32, the whole 5,000 reviews for training); its whole process wall time
(start-up, tokenising, training, evaluation) becomes `ftkit auto --time-budget`, and auto's whole
process must finish inside it. Both are scored on the same 1,000 test reviews.

    make bench-auto    (= pip install -e ".[bench]"; .venv/bin/python bench/auto_vs_trainer.py)
    .venv/bin/python bench/auto_vs_trainer.py --n-train 11808   (every training review: ~36 min)
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from fit_vs_trainer import ANCHOR, ENV, matmul_peaks

HERE = Path(__file__).resolve().parent


def trainer(n_train: int, epochs: float) -> dict:
    tick = time.perf_counter()
    done = subprocess.run([sys.executable, str(ANCHOR), str(n_train), str(epochs)], capture_output=True,
                          text=True, env=ENV, cwd="/tmp")
    out = done.stdout + done.stderr[-2000:]
    wall = time.perf_counter() - tick
    m = re.search(r"acc=([\d.]+) train_s=([\d.]+) samples_per_s=([\d.]+)", out)
    if not m:
        raise SystemExit(f"Trainer anchor failed:\n{out[-2000:]}")
    return {"accuracy": float(m[1]), "train_seconds": float(m[2]), "wall_seconds": round(wall, 1)}


def auto(data: dict, out: Path, budget: float) -> dict:
    cmd = [sys.executable, "-m", "ftkit.cli", "auto", "--train", str(data["train"]), "--test", str(data["test"]),
           "--model", "minilm-l6", "--time-budget", f"{int(budget)}s", "--out", str(out), "--overwrite", "--quiet"]
    tick = time.perf_counter()
    subprocess.run(cmd, check=True, env=ENV)
    wall = time.perf_counter() - tick
    report = json.loads((out / "auto.json").read_text())
    best = json.loads((Path(report["final_run"]) / "summary.json").read_text())
    return {"accuracy": best["metrics"]["test"]["accuracy"], "wall_seconds": round(wall, 1),
            "test_ci": best["metrics"]["test"].get("ci", {}).get("accuracy"),
            "strategy": best["strategy"], "hyperparameters": best["hyperparameters"],
            "stages": report.get("stages"), "trials": (report.get("tune") or {}).get("trials")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--reuse-trainer", action="store_true", help="take the Trainer run from the last results file")
    args = parser.parse_args()
    from ftkit.datasets import rotten_tomatoes

    data = rotten_tomatoes(args.out / f"rotten-tomatoes-{args.n_train}", n_train=args.n_train)
    peaks = [matmul_peaks()]
    name = "auto_vs_trainer.json" if args.n_train == 5000 else f"auto_vs_trainer_{args.n_train}.json"
    saved = HERE / "results" / name
    peer = (json.loads(saved.read_text())["trainer_default"] if args.reuse_trainer and saved.is_file()
            else trainer(args.n_train, args.epochs))
    ours = auto(data, args.out / "auto-rt", peer["wall_seconds"])
    peaks.append(matmul_peaks())
    report = {"when": time.strftime("%Y-%m-%d %H:%M"), "n_train": args.n_train, "matmul_gflops": peaks,
              "budget_seconds": peer["wall_seconds"], "trainer_default": peer, "ftkit_auto": ours,
              "accuracy_gain_points": round(100 * (ours["accuracy"] - peer["accuracy"]), 2),
              "auto_within_budget": ours["wall_seconds"] <= peer["wall_seconds"]}
    (HERE / "results").mkdir(exist_ok=True)
    saved.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "ftkit_auto"} | {
        "auto": {k: ours[k] for k in ("accuracy", "wall_seconds", "strategy")}}, indent=2))


if __name__ == "__main__":
    main()
