"""CPU inference speed of `ftkit.load(RUN).predict(texts)` against a transformers `pipeline` on the
same fine-tuned model, in one process, interleaved, examples per second over the 1,000 Rotten
Tomatoes test reviews.

The peer is the code people write first: `pipeline("text-classification", model=RUN/model)` called
on the list of texts, with its default batch size (1) and with batch_size=64. The run is trained with
`model.pooling=cls` so that plain transformers computes the same model (a run on the folder's own
mean pooling needs ftkit's pooler, which `pipeline` does not know); the labels of the two are
compared, row by row.

    .venv/bin/python bench/predict_vs_pipeline.py [--run RUN_DIR] [--rounds 3] [--threads 2]

Without --run it first trains one (`ftkit fit --model minilm-l6`, 2,000 reviews, 1 epoch,
model.pooling=cls) under bench/out/predict. Results: bench/results/predict_vs_pipeline.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def train(out: Path) -> tuple[Path, Path]:
    from ftkit.datasets import rotten_tomatoes

    data = rotten_tomatoes(out / "data", n_train=2000)
    run = out / "run"
    if not (run / "summary.json").is_file():
        subprocess.run([sys.executable, "-m", "ftkit.cli", "fit", "--model", "minilm-l6", "--train", str(data["train"]),
                        "--test", str(data["test"]), "--epochs", "1", "--set", "model.pooling=cls", "--out", str(run),
                        "--overwrite", "--quiet"], check=True, env=ENV)
    return run, Path(data["test"])


def timed(fn, texts: list[str]) -> tuple[float, list[str]]:
    start = time.perf_counter()
    labels = fn(texts)
    return len(texts) / (time.perf_counter() - start), labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, help="a text-classification run folder trained with model.pooling=cls")
    ap.add_argument("--test", type=Path, help="a CSV with a text column (default: the run's Rotten Tomatoes test)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "predict")
    args = ap.parse_args()
    os.environ.update(ENV)
    run, test = (args.run, args.test) if args.run else train(args.out)
    import pandas as pd
    import torch
    from transformers import pipeline

    import ftkit

    torch.set_num_threads(args.threads)
    texts = pd.read_csv(test)["text"].astype(str).tolist()
    model = ftkit.load(run)
    peer = pipeline("text-classification", model=str(run / "model"), device="cpu")
    ways = {"ftkit predict": lambda t: [p["label"] for p in model.predict(t)],
            "pipeline, batch_size=1 (default)": lambda t: [p["label"] for p in peer(t, truncation=True)],
            "pipeline, batch_size=64": lambda t: [p["label"] for p in peer(t, truncation=True, batch_size=64)]}
    for fn in ways.values():  # warm-up: weights paged in, kernels chosen
        fn(texts[:64])
    speeds: dict[str, list[float]] = {name: [] for name in ways}
    labels: dict[str, list[str]] = {}
    for _ in range(args.rounds):
        for name, fn in ways.items():
            speed, labels[name] = timed(fn, texts)
            speeds[name].append(speed)
    base = labels["pipeline, batch_size=1 (default)"]
    rows = {name: {"examples_per_second": round(statistics.median(s), 1), "rounds": [round(x, 1) for x in s],
                   "label_agreement_with_pipeline": round(sum(a == b for a, b in zip(labels[name], base)) / len(base), 4)}
            for name, s in speeds.items()}
    ours = rows["ftkit predict"]["examples_per_second"]
    report = {"when": time.strftime("%Y-%m-%d %H:%M"), "run": str(run), "examples": len(texts),
              "threads": args.threads, "trained_precision": json.loads((run / "summary.json").read_text()).get("precision"),
              "ways": rows,
              "ftkit_over_pipeline_default": round(ours / rows["pipeline, batch_size=1 (default)"]["examples_per_second"], 2),
              "ftkit_over_pipeline_batch64": round(ours / rows["pipeline, batch_size=64"]["examples_per_second"], 2)}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "predict_vs_pipeline.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
