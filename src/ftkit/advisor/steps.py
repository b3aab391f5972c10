"""Timing a few of the loop's real optimizer steps (`ftkit advise`): which batches, how they are
timed, and the seconds per batch they imply for a whole epoch. Used by profile.py (the full model)
and measure.py (the head-only phase)."""
from __future__ import annotations

import time
from typing import Optional

import numpy as np
import torch

from ftkit.training.batches import epoch_batches
from ftkit.training.loop import train_mode

TIMED_STEPS = 4  # at least this many batches timed per strategy (after the warm-up) ...
TIMED_SECONDS = 3.0  # ... and more, up to MAX_TIMED_STEPS, until this long: a loaded machine's noise averages out
MAX_TIMED_STEPS = 16
EVAL_SAMPLE_BATCHES = 3  # eval batches timed per precision: enough to average out batch shapes


def pick_batches(lengths: np.ndarray, cfg, weights, k: int = MAX_TIMED_STEPS) -> tuple[list, list]:
    """(warm-up batches, up to k batches to time) from epoch 0's real batches. The timed ones sit
    at quantiles of padded size (rows x longest row) in van der Corput order (1/2, 1/4, 3/4, 1/8,
    ...), so any first few of them already spread over the epoch's sizes as the epoch does."""
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
    """The loop's epoch body (`Loop.backward` + `Loop.optimizer_step`) for the given batches, one optimizer step each, timed in
    two parts: the batch (collate + forward + backward) and the optimizer step. Each batch runs
    twice: the first time a batch shape is seen costs extra on CPU (kernels are prepared per
    shape), which a real run pays once per shape, not once per step. With `min_steps`, stops
    once that many ran and `seconds` have passed."""
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
    """The loop's own batch (`Loop.backward`: collate, forward, backward, the loss read that syncs
    the device) and its own optimizer step (clipping, AdamW, schedule, zero_grad), timed apart."""
    tick = time.perf_counter()
    loop.backward(idx)
    mid = time.perf_counter()
    loop.optimizer_step()
    _sync(loop.x.device)
    return mid - tick, time.perf_counter() - mid


def summarize_steps(rows: list[dict], lengths: np.ndarray, cfg, weights, params) -> dict:
    """Seconds per batch at the epoch's mean padded size (a line through the timed batches,
    never falling below half their mean), and the optimizer step's seconds."""
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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
