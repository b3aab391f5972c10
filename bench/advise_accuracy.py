"""How close is `ftkit advise`'s time estimate to the real `ftkit fit`? (issue 6)

For each demo config: `ftkit advise CONFIG --strategies <its strategy>` (the estimate), then the
actual `ftkit fit CONFIG` (each in its own process, one after the other), and the estimated train
and total seconds against summary.json's `timing`. Target: within ±30% on a quiet machine.

    .venv/bin/python bench/advise_accuracy.py                 # both demos as configured
    .venv/bin/python bench/advise_accuracy.py --quick         # 1 epoch on a 1,000-row sample: a smoke run
    .venv/bin/python bench/advise_accuracy.py --demos rotten-tomatoes --set train.threads=2

Data: `ftkit datasets rotten-tomatoes --out data`; `ftkit datasets fashion-mnist --out data
--n-train 3000 --n-test 1000` (Debian's dataset-fashion-mnist).
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
ROOT = HERE.parent
FTKIT = [sys.executable, "-m", "ftkit.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
DEMOS = {"rotten-tomatoes": ROOT / "examples" / "rotten-tomatoes.yaml",
         "fashion-mnist": ROOT / "examples" / "fashion-mnist.yaml"}
QUICK = ["--set", "data.train_rows=1000", "--epochs", "1"]


def run(args: list[str]) -> float:
    tick = time.perf_counter()
    done = subprocess.run(FTKIT + args, cwd=ROOT, env=ENV, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - tick


def measure(name: str, config: Path, flags: list[str], out: Path) -> dict:
    import yaml

    strategy = (yaml.safe_load(config.read_text()).get("strategy") or {}).get("name", "full")
    advice_path, run_dir = out / f"advise-{name}.json", out / f"advise-fit-{name}"
    advise_wall = run(["advise", str(config), "--strategies", strategy, "--out", str(advice_path), "--quiet", *flags])
    fit_wall = run(["fit", str(config), "--out", str(run_dir), "--overwrite", "--quiet", *flags])
    est = json.loads(advice_path.read_text())["strategies"][strategy]["estimate"]
    timing = json.loads((run_dir / "summary.json").read_text())["timing"]
    row = {"demo": name, "strategy": strategy, "flags": flags, "advise_wall_seconds": round(advise_wall, 1),
           "fit_wall_seconds": round(fit_wall, 1), "estimate": est, "actual": timing}
    for key in ("train_seconds", "total_seconds"):
        row[f"{key}_ratio"] = round(est[key] / max(timing[key], 1e-9), 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demos", default=",".join(DEMOS), help="comma-separated: " + ", ".join(DEMOS))
    parser.add_argument("--quick", action="store_true", help="1 epoch on 1,000 training rows (smoke run)")
    parser.add_argument("--set", action="append", default=[], help="extra --set for advise and fit")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--results", type=Path, default=HERE / "results" / "advise_accuracy.json")
    args = parser.parse_args()
    flags = (QUICK if args.quick else []) + [x for s in args.set for x in ("--set", s)]
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [measure(name, DEMOS[name], flags, args.out) for name in args.demos.split(",")]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({"quick": args.quick, "rows": rows}, indent=2))
    print(f"{'demo':17s} {'est. train':>10s} {'train':>8s} {'ratio':>6s} {'est. total':>10s} {'total':>8s} {'ratio':>6s}")
    for r in rows:
        e, a = r["estimate"], r["actual"]
        print(f"{r['demo']:17s} {e['train_seconds']:10.1f} {a['train_seconds']:8.1f} {r['train_seconds_ratio']:6.2f} "
              f"{e['total_seconds']:10.1f} {a['total_seconds']:8.1f} {r['total_seconds_ratio']:6.2f}")
    print(f"results: {args.results}")


if __name__ == "__main__":
    main()
