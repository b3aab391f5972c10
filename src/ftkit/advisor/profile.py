"""The profiling pass of `ftkit advise`: a few real optimizer steps per strategy, through the code
a real `fit` runs, on the real data and machine.

For one strategy, `profile_strategy` builds the run exactly as `fit_run` does (data -> doctor ->
model -> strategy -> encode -> the loop's optimizer and schedule), timing that setup, then times:

- training steps on batches drawn as the real epoch draws them (length-grouped), chosen at
  quantiles of their padded size so the sample's padding is the epoch's; the largest batch runs
  first as a warm-up, which also puts the peak activation memory into the measured peak; each
  timed batch runs twice, as a new batch shape's first step costs extra, once per shape of a run;
- the evaluation (seconds per call and per input token, or per image) in the run's precision and
  in fp32 (the final evaluation), on random training rows;
- for linear-probe / LP-FT: the frozen body's feature pass and the head's steps on those features;
- one resumable checkpoint, one best-weights save and the final honest evaluation (bootstrap CIs)
  (measure.py).

The result is plain data (JSON-able); `estimate.estimate_fit` turns it into seconds for a fit.
"""
from __future__ import annotations

import logging
import time
from typing import Optional

import numpy as np
import torch

log = logging.getLogger(__name__)

TIMED_STEPS = 4  # at least this many batches timed per strategy (after the warm-up) ...
TIMED_SECONDS = 3.0  # ... and more, up to MAX_TIMED_STEPS, until this long: a loaded machine's noise averages out
MAX_TIMED_STEPS = 16
EVAL_SAMPLE_BATCHES = 3  # eval batches timed per precision: enough to average out batch shapes


def profile_strategy(cfg, steps: int = TIMED_STEPS) -> dict:
    """Everything `estimate_fit` needs about one strategy (cfg.strategy.name) on this machine."""
    from ftkit.advisor.facts import data_facts, model_facts
    from ftkit.advisor.measure import eval_samples, profile_assess, profile_eval, profile_probe, profile_saves

    run = build_run(cfg)
    out = {"strategy": cfg.strategy.name, "setup_seconds": run["setup_seconds"], "loop": _loop_settings(run),
           "data": data_facts(run), "model": model_facts(run), "precision": run["precision"],
           "device": str(run["device"]), "threads": run["threads"]}
    samples = eval_samples(run)
    params = run["params"]
    if params.probe is not None:
        out["probe"] = profile_probe(run, samples[1], steps)
    if params.probe is None or params.probe.then_full or not out["probe"]["cacheable"]:
        out["steps"] = _profile_steps(run, steps)
    out["eval"] = profile_eval(run, samples)
    out["saves"] = profile_saves(run)
    out["assess_seconds"] = profile_assess(run)
    out["peak_memory_mb"] = round(_peak_mb(run["device"]), 1)
    return out


def build_run(cfg) -> dict:
    """`fit_run`'s steps 1-3 and the encoding (its own `prepare`), timed; nothing is written."""
    from ftkit.runs.fit import prepare

    started = time.perf_counter()
    prepared = prepare(cfg, announce=False)
    if prepared.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(prepared.device)
    return dict(vars(prepared)) | {"setup_seconds": round(time.perf_counter() - started, 3)}


def _loop_settings(run: dict) -> dict:
    t = run["cfg"].train
    phase = run["params"].probe
    return {"epochs": t.epochs, "batch_size": t.batch_size, "grad_accum": t.grad_accum, "eval_every": t.eval_every,
            "eval_batch_size": t.eval_batch_size, "train_eval_size": t.train_eval_size,
            "checkpoint_every": t.checkpoint_every,
            "probe_epochs": None if phase is None else (phase.epochs or t.epochs),
            "then_full": None if phase is None else phase.then_full}


def _make_loop(run: dict):
    """The loop `fit_run` would build (same loss, optimizer, schedule); it is never run whole."""
    from ftkit.runs.fit import _l2sp, _metric
    from ftkit.training.loop import Loop, LoopInputs
    from ftkit.training.regularize import with_penalty
    from ftkit.ui import NoProgress

    cfg, task = run["cfg"], run["task"]
    inputs = LoopInputs(
        model=run["model"], train_data=run["data"]["train"], val_data=None, train_probe=None,
        loss=with_penalty(task.make_loss(cfg, run["data"]["train"]), _l2sp(run["model"], cfg)),
        evaluate=lambda m, d: {}, metric=_metric(cfg, task), seed=cfg.seed, device=run["device"],
        precision=run["precision"], lr_scales=run["params"].lr_scales, unfreeze=run["params"].unfreeze,
        sample_weights=run["weights"])
    return Loop(inputs, cfg.train, None, NoProgress())


def pick_batches(lengths: np.ndarray, cfg, weights, k: int = MAX_TIMED_STEPS) -> tuple[list, list]:
    """(warm-up batches, up to k batches to time) from epoch 0's real batches. The timed ones sit
    at quantiles of padded size (rows x longest row) in van der Corput order (1/2, 1/4, 3/4, 1/8,
    ...), so any first few of them already spread over the epoch's sizes as the epoch does."""
    from ftkit.training.batches import epoch_batches

    t = cfg.train
    batches = epoch_batches(lengths, t.batch_size, cfg.seed, 0, t.group_by_length, weights)
    order = np.argsort([len(b) * int(lengths[b].max()) for b in batches], kind="stable")
    warm = [batches[order[-1]], batches[order[len(order) // 2]]]  # largest first: peak memory
    timed = [batches[order[min(len(order) - 1, int(_corput(i) * len(order)))]] for i in range(1, k + 1)]
    return warm, timed


def _corput(i: int) -> float:
    """i-th term of the base-2 van der Corput sequence: 1/2, 1/4, 3/4, 1/8, 5/8, ..."""
    q, denom = 0.0, 1.0
    while i:
        denom *= 2
        q += (i % 2) / denom
        i //= 2
    return q


def time_steps(loop, batches: list, min_steps: Optional[int] = None, seconds: float = 0.0) -> list[dict]:
    """The body of `Loop._train_epoch` for the given batches, one optimizer step each, timed in
    two parts: the batch (collate + forward + backward) and the optimizer step. Each batch runs
    twice: the first time a batch shape is seen costs extra on CPU (kernels are prepared per
    shape), which a real run pays once per shape, not once per step. With `min_steps`, stops
    once that many ran and `seconds` have passed."""
    from ftkit.training.loop import train_mode

    train_mode(loop.x.model)
    rows, started = [], time.perf_counter()
    for idx in batches:
        if min_steps is not None and len(rows) >= min_steps and time.perf_counter() - started >= seconds:
            break
        cold = sum(_one_step(loop, idx))
        batch, optimizer = _one_step(loop, idx)
        lengths = loop.x.train_data.lengths[idx]
        rows.append({"rows": len(idx), "cells": int(len(idx) * lengths.max()), "batch_seconds": batch,
                     "optimizer_seconds": optimizer, "first_seconds": cold})
    return rows


def _one_step(loop, idx) -> tuple[float, float]:
    from ftkit.training.device import autocast

    x = loop.x
    tick = time.perf_counter()
    batch = {k: v.to(x.device) for k, v in x.train_data.batch(idx).items()}
    with autocast(x.precision, x.device):
        loss = x.loss(x.model, batch)
    loss.backward()
    loss.item()  # the loop reads the loss every step (a device sync on GPU)
    mid = time.perf_counter()
    loop._optimizer_step()  # the loop's own step: clipping, AdamW, schedule, zero_grad
    _sync(x.device)
    return mid - tick, time.perf_counter() - mid


def _profile_steps(run: dict, k: int) -> dict:
    loop = _make_loop(run)
    warm, timed = pick_batches(run["data"]["train"].lengths, run["cfg"], run["weights"])
    time_steps(loop, warm)
    rows = time_steps(loop, timed, k, TIMED_SECONDS)
    run["loop"] = loop  # for the checkpoint timing
    return summarize_steps(rows, run["data"]["train"].lengths, run["cfg"], run["weights"], run["params"])


def summarize_steps(rows: list[dict], lengths: np.ndarray, cfg, weights, params) -> dict:
    """Seconds per batch at the epoch's mean padded size (a line through the timed batches,
    never falling below half their mean), and the optimizer step's seconds."""
    from ftkit.training.batches import epoch_batches

    batches = epoch_batches(lengths, cfg.train.batch_size, cfg.seed, 0, cfg.train.group_by_length, weights)
    mean_cells = float(np.mean([len(b) * int(lengths[b].max()) for b in batches]))
    cells = np.array([r["cells"] for r in rows], dtype=float)
    seconds = np.array([r["batch_seconds"] for r in rows])
    per_batch = float(seconds.mean())
    if np.ptp(cells) > 0:
        slope, intercept = np.polyfit(cells, seconds, 1)
        per_batch = max(float(intercept + max(slope, 0.0) * mean_cells), 0.5 * per_batch)
    optimizer = float(np.median([r["optimizer_seconds"] for r in rows]))
    # A new batch shape's first step costs extra; the run meets each shape of its epochs once.
    first = float(np.median([max(r["first_seconds"] - r["batch_seconds"] - r["optimizer_seconds"], 0.0)
                             for r in rows]))
    shapes = len({(len(b), int(lengths[b].max())) for b in batches})
    return {"batch_seconds": round(per_batch, 5), "optimizer_seconds": round(optimizer, 5),
            "step_seconds": round(per_batch * cfg.train.grad_accum + optimizer, 5),
            "new_shape_seconds": round(first, 5), "shapes": shapes,
            "mean_padded_cells": round(mean_cells, 1), "timed": rows,
            "trainable": params.trainable, "total": params.total}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: torch.device) -> float:
    from ftkit.training.device import peak_memory_mb

    return peak_memory_mb(device)
