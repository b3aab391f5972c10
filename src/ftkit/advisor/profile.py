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

import torch

from ftkit.advisor.facts import data_facts, model_facts
from ftkit.advisor.measure import eval_samples, profile_assess, profile_eval, profile_probe, profile_saves
from ftkit.advisor.steps import TIMED_SECONDS, TIMED_STEPS, pick_batches, summarize_steps, time_steps
from ftkit.runs.fit import l2sp_penalty, prepare
from ftkit.training.device import peak_memory_mb
from ftkit.training.loop import Loop, loop_inputs
from ftkit.ui import NoProgress

log = logging.getLogger(__name__)


def profile_strategy(cfg, steps: int = TIMED_STEPS) -> dict:
    """Everything `estimate_fit` needs about one strategy (cfg.strategy.name) on this machine."""
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


def _make_loop(run: dict) -> Loop:
    """The loop `fit_run` would build (the loop's own inputs: loss, L2-SP, optimizer, schedule);
    it is never run whole, and never validates."""
    cfg, model = run["cfg"], run["model"]
    inputs = loop_inputs(run["task"], cfg, model, {"train": run["data"]["train"]}, run["splits"].labels,
                         metric=run["metric"], device=run["device"], precision=run["precision"],
                         params=run["params"], weights=run["weights"], l2sp=l2sp_penalty(model, cfg))
    return Loop(inputs, cfg.train, None, NoProgress())


def _profile_steps(run: dict, k: int) -> dict:
    loop = _make_loop(run)
    warm, timed = pick_batches(run["data"]["train"].lengths, run["cfg"], run["weights"])
    time_steps(loop, warm)
    rows = time_steps(loop, timed, k, TIMED_SECONDS)
    run["loop"] = loop  # for the checkpoint timing
    return summarize_steps(rows, run["data"]["train"].lengths, run["cfg"], run["weights"], run["params"])


def _peak_mb(device: torch.device) -> float:
    return peak_memory_mb(device)
