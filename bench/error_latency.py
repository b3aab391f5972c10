"""How fast bad input is refused (issue 16): each command runs the real CLI in a fresh process.

fit, cv, doctor and predict, and the outer loops over fit: compare, tune, advise, auto, rank,
fit --baseline and fit --seeds.

Every case must exit 2 with one `error: ...` line on stderr (doctor exits 0 and reports the
unloadable file in doctor.json; `--strict` makes that exit 1); the table shows the best wall
clock of --repeats runs. The target is under 2 s on the project's 2-core machine.

    .venv/bin/python bench/error_latency.py [--repeats 3] [--json bench/results/error_latency.json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
TARGET_SECONDS = 2.0


def write_csv(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def cases(d: Path) -> list[tuple[str, list[str], int]]:
    """(name, ftkit arguments, expected exit status). What a command writes goes under d/out,
    emptied before every run (auto writes doctor.json; tune before the fix wrote tune-config.yaml)."""
    good = write_csv(d / "good.csv", [{"text": f"{w} film {i}", "label": w} for i in range(20) for w in ("good", "bad")])
    no_text = write_csv(d / "review.csv", [{"review": "good", "label": "pos"}, {"review": "bad", "label": "neg"}])
    blank = write_csv(d / "blank.csv", [{"text": "good film", "label": "pos"}, {"text": "bad film", "label": " "}])
    (d / "bad_key.yaml").write_text(f"model: minilm-l6\ndata:\n  train: {good}\n  no_such_key: 1\n")
    out = d / "out"
    fit = ["fit", "--model", "minilm-l6", "--out", str(out / "run"), "--quiet"]
    return [
        ("fit: file not found", fit + ["--train", str(d / "missing.csv")], 2),
        ("fit: missing column", fit + ["--train", str(no_text)], 2),
        ("fit: blank label", fit + ["--train", str(blank)], 2),
        ("fit: --set train.lr=abc", fit + ["--train", str(good), "--set", "train.lr=abc"], 2),
        ("fit: unknown config key", ["fit", str(d / "bad_key.yaml"), "--out", str(out / "run"), "--quiet"], 2),
        ("fit: unknown flag", fit + ["--train", str(good), "--no-such-flag"], 2),
        ("fit: --batch-size abc", fit + ["--train", str(good), "--batch-size", "abc"], 2),
        ("doctor --strict: file not found", ["doctor", "--train", str(d / "missing.csv"), "--out",
                                             str(out / "doctor.json"), "--strict", "--quiet"], 1),
        ("predict: no run folder", ["predict", str(d / "no-run"), "--text", "good film"], 2),
        ("cv: missing column", ["cv", "--model", "minilm-l6", "--train", str(no_text), "--out", str(out / "cv"),
                                "--quiet"], 2),
    ] + outer_loops(no_text, d / "missing.csv", out) + [(f"fit {task}: missing column", fit + ["--task", task, "--train", str(no_text)], 2)
         for task in ("token-classification", "image-classification", "audio-classification", "speech-recognition")]


def outer_loops(no_text: Path, missing: Path, out: Path) -> list[tuple[str, list[str], int]]:
    """The commands that run `fit` in an outer loop (or, for auto, after its doctor stage)."""
    model = ["--model", "minilm-l6", "--quiet"]
    compare = ["compare", "--strategies", "full,lora", "--out", str(out / "compare"), *model]
    tune = ["tune", "--trials", "2", "--out", str(out / "tune"), *model]
    advise = ["advise", "--out", str(out / "advice.json"), *model]
    fit = ["fit", "--out", str(out / "run"), *model]
    return [
        ("compare: missing column", compare + ["--train", str(no_text)], 2),
        ("compare: unknown strategy", ["compare", "--strategies", "full,nosuch", "--out", str(out / "compare"),
                                       *model, "--train", str(no_text)], 2),
        ("tune: file not found", tune + ["--train", str(missing)], 2),
        ("tune: missing column", tune + ["--train", str(no_text)], 2),
        ("advise: missing column", advise + ["--train", str(no_text)], 2),
        ("advise token-classification: missing column", advise + ["--task", "token-classification",
                                                                   "--train", str(no_text)], 2),
        ("auto: missing column", ["auto", "--time-budget", "10m", "--out", str(out / "auto"), *model,
                                  "--train", str(no_text)], 2),
        ("rank: missing column", ["rank", "--models", "minilm-l6,random:minilm-l6", "--out", str(out / "rank.json"),
                                  "--quiet", "--train", str(no_text)], 2),
        ("fit --baseline scratch: missing column", fit + ["--baseline", "scratch", "--train", str(no_text)], 2),
        ("fit --seeds 2: missing column", fit + ["--seeds", "2", "--train", str(no_text)], 2),
    ]


def timed(args: list[str], expect: int, scratch: Path) -> float:
    shutil.rmtree(scratch, ignore_errors=True)
    tick = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "ftkit.cli", *args], capture_output=True, text=True, env=ENV,
                            timeout=300)
    seconds = time.perf_counter() - tick
    lines = result.stderr.strip().splitlines()
    if result.returncode != expect:
        raise SystemExit(f"ftkit {' '.join(args)}: exit {result.returncode}, expected {expect}\n{result.stderr}")
    if expect == 2 and not (len(lines) == 1 and lines[0].startswith("error: ")):
        print(f"  note: stderr is not one `error:` line: {result.stderr.strip()[:300]!r}", file=sys.stderr)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the timings here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv, expect in cases(Path(tmp)):
            best = min(timed(argv, expect, Path(tmp) / "out") for _ in range(args.repeats))
            rows.append({"case": name, "exit": expect, "best_seconds": round(best, 2)})
            print(f"{name:44s} exit {expect}  {best:5.2f} s", flush=True)
    print(f"\n| case | exit | best of {args.repeats} (s) |\n|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['exit']} | {r['best_seconds']:.2f} |")
    slow = [r["case"] for r in rows if r["best_seconds"] >= TARGET_SECONDS]
    print(f"\nslowest {max(r['best_seconds'] for r in rows):.2f} s; "
          + (f"over {TARGET_SECONDS:g} s: {', '.join(slow)}" if slow else f"all under {TARGET_SECONDS:g} s"))
    if args.json:
        args.json.write_text(json.dumps({"repeats": args.repeats, "cases": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
