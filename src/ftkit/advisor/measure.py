"""Measurements of the profiling pass beyond the training steps (see profile.py): evaluation
speed, the linear-probe phase, checkpoint / weights saves and the final honest evaluation."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ftkit.advisor.steps import EVAL_SAMPLE_BATCHES, TIMED_SECONDS, pick_batches, time_steps
from ftkit.evaluation.honest import assess
from ftkit.runs.probe import ProbeContext, frozen_body, probe_inputs, standardize
from ftkit.strategies.groups import head_modules
from ftkit.training import checkpoint
from ftkit.training.features import FeatureData, NotCacheable, body_fingerprint, extract
from ftkit.training.loop import Loop
from ftkit.ui import NoProgress


def eval_samples(run: dict) -> tuple:
    """(one eval batch, up to EVAL_SAMPLE_BATCHES of them) of random training rows (the largest
    split), encoded as fit encodes them: two sizes separate a call's fixed cost from its cost
    per input unit."""
    splits, cfg = run["splits"], run["cfg"]
    size = cfg.train.eval_batch_size
    n = min(len(splits.train), EVAL_SAMPLE_BATCHES * size)
    rows = np.random.default_rng(cfg.seed).choice(len(splits.train), size=n, replace=False).tolist()
    encode = lambda keep: run["task"].encode(splits.train.subset(sorted(keep)), run["processor"], cfg,  # noqa: E731
                                             splits.labels)
    return encode(rows[:min(size, n // 2 or 1)]), encode(rows)


def profile_eval(run: dict, samples: tuple) -> dict:
    """`task.evaluate`'s cost per call and per input unit (token; 1 per image), in the run's
    precision and in fp32 (the final evaluation)."""
    task, cfg, labels = run["task"], run["cfg"], run["splits"].labels
    small, big = samples
    units = (float(small.lengths.sum()), float(big.lengths.sum()))
    per_unit, per_call = {}, {}
    for precision in dict.fromkeys((run["precision"], "fp32")):
        task.evaluate(run["model"], small, labels, cfg.train.eval_batch_size, precision)  # warm-up
        seconds = []
        for sample in (small, big):
            tick = time.perf_counter()
            task.evaluate(run["model"], sample, labels, cfg.train.eval_batch_size, precision)
            seconds.append(time.perf_counter() - tick)
        per_unit[precision], per_call[precision] = _line(units, seconds)
    return {"seconds_per_unit": per_unit, "seconds_per_call": per_call, "sample_rows": len(big)}


def _line(units: tuple, seconds: list) -> tuple[float, float]:
    """(seconds per unit, fixed seconds per call) through two timed calls; noise that would make
    either negative falls back to a cost proportional to size."""
    mean = seconds[1] / max(units[1], 1.0)
    if units[1] <= units[0]:
        return mean, 0.0
    slope = (seconds[1] - seconds[0]) / (units[1] - units[0])
    slope = min(max(slope, 0.25 * mean), mean)
    return slope, max(seconds[1] - slope * units[1], 0.0)


def profile_probe(run: dict, sample, k: int) -> dict:
    """The head-only phase: feature pass speed (per input unit) and the head's step time."""
    model, cfg, head = run["model"], run["cfg"], head_modules(run["model"])
    if len(head) != 1 or not hasattr(sample, "fingerprint"):
        return {"cacheable": False}
    with frozen_body(model):
        try:
            extract(model, head[0], sample, cfg.train.eval_batch_size, run["precision"])  # warm-up
            tick = time.perf_counter()
            feats, trailing = extract(model, head[0], sample, cfg.train.eval_batch_size, run["precision"])
            per_unit = (time.perf_counter() - tick) / max(float(sample.lengths.sum()), 1.0)
        except NotCacheable:
            return {"cacheable": False}
        tick = time.perf_counter()
        body_fingerprint(model, head[0])  # hashed once per run to key the cache
        hash_seconds = time.perf_counter() - tick
        features, _ = standardize({"train": FeatureData(feats, sample.labels, trailing)}, getattr(model, head[0]))
        ctx = ProbeContext(model, run["task"], cfg, {"train": run["data"]["train"]}, None, run["splits"].labels,
                           "accuracy", run["device"], run["precision"], NoProgress(), None)
        loop = Loop(probe_inputs(ctx, getattr(model, head[0]), features), cfg.train, None, NoProgress())
        warm, timed = pick_batches(features["train"].lengths, cfg, None)
        time_steps(loop, warm)
        rows = time_steps(loop, timed, k, TIMED_SECONDS / 3)
    step = float(np.median([r["batch_seconds"] + r["optimizer_seconds"] for r in rows]))
    return {"cacheable": True, "feature_seconds_per_unit": per_unit, "hash_seconds": round(hash_seconds, 4),
            "head_step_seconds": round(step, 6)}


def profile_saves(run: dict) -> dict:
    """One resumable checkpoint (weights + optimizer moments) and one best-weights file."""
    loop = run.get("loop")
    with tempfile.TemporaryDirectory(prefix="ftkit-advise-") as tmp:
        tick = time.perf_counter()
        checkpoint.save_weights_atomic(run["model"], Path(tmp) / "best.safetensors")
        weights = time.perf_counter() - tick
        tick = time.perf_counter()
        if loop is not None:
            checkpoint.save(Path(tmp) / "checkpoints", run["model"], loop.optimizer, loop.scheduler, vars(loop.state))
        full = time.perf_counter() - tick if loop is not None else 0.0
    return {"weights_seconds": round(weights, 4), "checkpoint_seconds": round(full, 4)}


def profile_assess(run: dict) -> float:
    """The final honest evaluation (bootstrap CIs, calibration) on random probabilities of the
    real split sizes; tasks without per-example probabilities are not timed (0)."""
    task, data, labels = run["task"], run["data"], run["splits"].labels
    if not task.capabilities.probabilities:
        return 0.0
    rng = np.random.default_rng(0)
    held = {k: v for k, v in data.items() if k != "train"}
    probs = {k: rng.dirichlet(np.ones(len(labels)), size=len(v)).astype(np.float32) for k, v in held.items()}
    tick = time.perf_counter()
    assess(task, run["cfg"], held, probs, {k: {} for k in held}, labels, None)
    return round(time.perf_counter() - tick, 4)
