"""`fit`, top to bottom: data -> model -> strategy -> train -> evaluate -> save.

Everything that can fail on bad input (data, model name) runs before the run folder is
written, so a refused run leaves nothing behind.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import torch

from ftkit.config import FitConfig, to_dict
from ftkit.data.doctor import Report, check_data
from ftkit.data.splits import limit_train
from ftkit import distributed
from ftkit.distributed.launch import LAUNCH_FILE, Job
from ftkit.errors import ConfigError, RunDirError, StrategyError
from ftkit.evaluation.honest import assess, check_eval
from ftkit.evaluation.overfitting import diagnose
from ftkit.evaluation.retention import load_reference
from ftkit.failpoints import failpoint
from ftkit.io import atomic_path, write_json
from ftkit.models.loading import ModelSource, randomize, resolve
from ftkit.locks import folder_lock
from ftkit.reporting import REPORT, after_run
from ftkit.runs.probe import ProbeContext, load_head, probe_finished, run_probe, save_head
from ftkit.runs.rundir import RunDir
from ftkit.training.batches import balanced_weights
from ftkit.strategies import FreezeSummary, default_lr, freeze_word_embeddings, get_strategy, train_lr
from ftkit.strategies.groups import layer_groups
from ftkit.tasks import get_task, tasks_with
from ftkit.tasks.base import Encoded, Splits, Task
from ftkit.tracking import NoTracker, Tracker, default_uri, open_tracker
from ftkit.training import device as dev
from ftkit.training.loop import Loop, LoopInputs, loop_inputs
from ftkit.training.regularize import L2SP, set_dropout
from ftkit.ui import NoProgress, RichProgress
from ftkit.evaluation.metrics import DIRECTION

log = logging.getLogger(__name__)

FINAL_EVAL_PRECISION = "fp32"  # final metrics match what plain transformers reproduces


def default_out(cfg: FitConfig) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return str(Path("runs") / f"{stamp}-{Path(cfg.model.name).name}-{cfg.strategy.name}")


def fit_run(cfg: FitConfig, *, resume: bool = False, overwrite: bool = False, quiet: bool = False,
            command: list[str] | None = None, on_validate=None, score_test: bool = True,
            save_model: bool = True) -> Path:
    """One fine-tuning run, written to cfg.out. Outer loops (tuning) may pass `on_validate`
    (called with each validation record; True stops the run, e.g. a pruned trial), and
    `score_test=False` / `save_model=False` for trials that must not see the test split and
    whose weights nobody keeps (the best configuration is refit)."""
    cfg = cfg if cfg.out else cfg.model_copy(update={"out": default_out(cfg)})
    if distributed.wanted(cfg):  # --workers N / --address: the same flow in N Ray Train workers
        return _fit_distributed(cfg, resume=resume, overwrite=overwrite, quiet=quiet, command=command,
                                on_validate=on_validate, score_test=score_test, save_model=save_model)
    with folder_lock(cfg.out):  # one command per run folder; the OS releases it if we are killed
        if resume and RunDir(cfg.out).finished():
            return complete(RunDir(cfg.out), report=score_test)
        tracker = open_tracker(cfg)  # a bad --tracking-uri fails now, not after hours of training
        try:
            return _fit(cfg, tracker, resume=resume, overwrite=overwrite, quiet=quiet, command=command,
                        on_validate=on_validate, score_test=score_test, save_model=save_model)
        except BaseException as err:  # Ctrl-C included: the tracked run ends KILLED, not stuck RUNNING
            tracker.fail(err)
            raise


def complete(run: RunDir, report: bool = True) -> Path:
    """`--resume` on a finished run: its metrics are final (summary.json is written after the model
    and predictions). A run killed after that, while writing its report, gets the report and loses
    its resumable checkpoints now; otherwise there is nothing to resume."""
    todo = [what for what, missing in (("wrote its report", report and not (run.path / REPORT).is_file()),
                                       ("removed its leftover checkpoints", run.checkpoints.exists()))
            if missing]
    if not todo:
        raise RunDirError(f"{run.path} holds a finished run (summary.json); nothing to resume")
    if report:
        after_run(run.path, card=(run.model / "ftkit.json").is_file())
    shutil.rmtree(run.checkpoints, ignore_errors=True)
    log.warning("%s holds a finished run, stopped before its last steps: %s", run.path, " and ".join(todo))
    return run.path


def _fit_distributed(cfg: FitConfig, *, resume: bool, overwrite: bool, quiet: bool, command: list[str] | None,
                     on_validate, score_test: bool, save_model: bool) -> Path:
    """`--workers N`: this process places the workers (refusing what cannot be placed before
    anything is written), holds the run folder's lock, checks the folder, and waits while every
    worker runs `fit_worker`: the same flow as one process, rank 0 writing the run folder."""
    if on_validate is not None and not isinstance(on_validate, distributed.Relay):
        raise ConfigError("--workers-per-trial: trials on several workers need --executor ray (a trial of the "
                          "local executor reports to Optuna in this process, which the workers cannot reach)")
    relay = on_validate
    given = cfg
    cfg = distributed.absolute(cfg)
    if cfg.tracking.backend != "none" and not cfg.tracking.uri:  # this folder's ./mlruns, not each worker's
        cfg = cfg.model_copy(update={"tracking": cfg.tracking.model_copy(update={"uri": default_uri(None)[0]})})
    with distributed.cluster(cfg, quiet), folder_lock(cfg.out):
        run = RunDir(cfg.out)
        if resume and run.finished():
            return complete(run, report=score_test)
        began = run.check(resume, overwrite)
        job = Job(cfg, began, uuid.uuid4().hex[:12], quiet, tuple(command or []), score_test, save_model,
                  record=to_dict(given.model_copy(update={"out": str(given.out)})),
                  on_validate=relay.worker if relay else None)
        # a cluster's nodes (a Tune trial's workers may be on any) share Ray's run state beside the
        # run folders (shared storage, like --out)
        storage = Path(cfg.out).parent / ".ray" if cfg.distributed.address or relay else None
        distributed.launch(job, fit_worker, storage, relay.callbacks if relay else ())
    return Path(given.out)


def fit_worker(job: Job, team) -> None:
    """One Ray Train worker's part of a `--workers N` fit (ftkit.distributed runs it in each): the
    same `_fit` as one process, with its `team`. Rank 0 writes the run folder (and tracks it);
    the others prepare the same model and data, train their shards, and stop after the loop. A
    worker Ray restarted after a failure resumes what this launch began."""
    launched = Path(job.cfg.out) / "checkpoints" / LAUNCH_FILE
    began_here = launched.is_file() and json.loads(launched.read_text()).get("launch") == job.launch
    options = dict(resume=job.resume or began_here, overwrite=False, quiet=True, command=list(job.command),
                   on_validate=job.on_validate, score_test=job.score_test, save_model=job.save_model, team=team,
                   job=job)
    if team.rank != 0:
        _fit(job.cfg, NoTracker(), **options)
        return
    tracker = open_tracker(job.cfg)
    try:
        _fit(job.cfg, tracker, **options)
    except BaseException as err:
        tracker.fail(err)
        raise


def _fit(cfg: FitConfig, tracker: Tracker, *, resume: bool, overwrite: bool, quiet: bool,
         command: list[str] | None, on_validate, score_test: bool, save_model: bool, team=None,
         job: Optional[Job] = None) -> Path:
    started = time.perf_counter()
    run = RunDir(cfg.out)
    if team is None:  # workers: the driver checked the folder (and holds its lock)
        resume = run.check(resume, overwrite)
    leader = team is None or team.rank == 0
    p = prepare(cfg, announce=leader)  # steps 1-3: nothing written yet
    cfg, task, splits, model, data, device, precision = p.cfg, p.task, p.splits, p.model, p.data, p.device, p.precision
    metric, params, processor = p.metric, p.params, p.processor
    l2sp = l2sp_penalty(model, cfg)
    reference = load_reference(cfg, task, model, processor, p.source)  # --reference-data, or None
    if not leader:  # another worker: train its shards beside the leader, which writes everything
        _train(p, run, resume, True, on_validate, reference, l2sp, team)
        team.gather(team.throughput())
        return run.path
    if not resume:
        record = job.record if job is not None else to_dict(cfg.model_copy(update={"out": str(run.path)}))
        run.start(record, command or [], splits.record, overwrite)
        if job is not None:  # a worker Ray restarts finds this and resumes instead of starting over
            write_json(run.checkpoints / LAUNCH_FILE, {"launch": job.launch})
    tracker.start(cfg, run.path, command or [], resume)
    run.on_log = tracker.log_record  # metrics.jsonl records reach the tracker as they are written
    write_json(run.path / "doctor.json", p.doctor.to_dict())
    if reference is not None:  # the original task, measured on the untouched model (retention)
        reference.snapshot(model, run.path, resume)
    before = _zero_shot(task, model, data, cfg, precision, run, resume) if score_test else None

    # 4. train: the one loop, resumable (a head-only phase on cached features first, if asked)
    state, extra, resumed = _train(p, run, resume, quiet, on_validate, reference, l2sp, team)
    if team is not None:
        extra["distributed"] = distributed.summary(job.cfg.distributed, team, team.gather(team.throughput()))

    # 5. evaluate the final (best) model on every held-out split, with CIs, calibration, groups
    scored = data if score_test else {k: v for k, v in data.items() if k != "test"}
    metrics, test_probs, decision = _final_evaluation(task, model, scored, cfg, splits.labels, p.groups)

    # 6. save: model folder, predictions, then the summary (its presence marks the run done)
    if save_model:
        _save_model(task, params.adapter or model, processor, run, cfg, splits.labels, p.source,
                    params.adapter is not None, decision)
    if test_probs is not None:
        _write_predictions(task, splits, test_probs, before, run)
    runtime = {"device": str(device), "precision": precision, "threads": p.threads,
               "peak_memory_mb": round(dev.peak_memory_mb(device), 1)}
    summary = _summary(cfg, p.source, splits.labels, metrics, state, metric, params, runtime, data)
    _add_run_details(summary, cfg, params, state, metric, extra, l2sp, resumed)
    if before is not None:
        _add_zero_shot(summary, before, task, data, test_probs, cfg, metric)
    summary["timing"]["total_seconds"] = round(time.perf_counter() - started, 3)
    summary["outputs"] = {"model": save_model, "test_scored": score_test and "test" in data}
    if reference is not None:  # the original task again, with the fine-tuned body (forgetting)
        summary["retention"] = reference.result(model)
    run.write_summary(summary)
    if score_test:  # tuning trials (no test split, nobody reads them one by one) skip the report
        after_run(run.path, card=save_model)  # report.html + model card; a failure only warns
    # Done: model/ holds the chosen weights and a finished run cannot be resumed, so the resumable
    # state (hundreds of MB: weights + optimizer moments) goes.
    shutil.rmtree(run.checkpoints, ignore_errors=True)
    tracker.finish(run.path, summary)  # last: the run folder is complete
    return run.path


def _train(p: "Prepared", run: RunDir, resume: bool, quiet: bool, on_validate, reference, l2sp, team=None):
    """The head-only phase (linear probe, LP-FT's first) and/or the loop -> (state, extra, resumed).
    With a team, the head-only phase (cheap, on cached features) runs on the leader alone and the
    other workers take its head; the loop runs on every worker."""
    progress = NoProgress() if quiet else RichProgress()

    def make_inputs(m, team=None) -> LoopInputs:
        return loop_inputs(p.task, p.cfg, m, p.data, p.splits.labels, metric=p.metric, device=p.device,
                           precision=p.precision, params=p.params, weights=p.weights, train_probe=p.train_probe,
                           reference=reference, l2sp=l2sp, on_validate=on_validate, team=team)

    extra: dict = {}
    state, resumed = None, False
    leader = team is None or team.rank == 0
    if p.params.probe is not None and leader:
        # the head phase runs on the leader alone: a workers' hook (a collective) is not called there
        ctx = ProbeContext(p.model, p.task, p.cfg, p.data, p.probe_rows, p.splits.labels, p.metric, p.device,
                           p.precision, progress, make_inputs, on_validate if team is None else None)
        state, extra["probe"] = _probe_phase(ctx, p.params.probe, run, resume)
        resumed = extra["probe"].get("resumed", False)
    if p.params.probe is not None and team is not None and p.params.probe.then_full:
        team.from_leader(1)  # the leader's head phase is done and saved: the others load its head
        if not leader:
            load_head(p.model, RunDir(run.path / "probe"))
    if p.params.probe is None or p.params.probe.then_full:
        loop = Loop(make_inputs(p.model, team), p.cfg.train, run, progress)
        resumed = resume and loop.resume()
        state = loop.run_all()
    return state, extra, resumed


def _add_zero_shot(summary: dict, before: dict, task, data: dict, test_probs, cfg: FitConfig, metric: str) -> None:
    """The untouched model's test metrics beside the fine-tuned one's, with a paired CI of the change."""
    summary["metrics"]["test_before"] = before["metrics"]
    change = task.change_ci(data["test"], before["hypotheses"], test_probs, cfg) if cfg.eval.bootstrap else None
    summary["zero_shot"] = {**zero_shot_summary(before["metrics"], summary["metrics"].get("test", {}), metric, change),
                            "seconds": before.get("seconds")}


@dataclass
class Prepared:
    """What `fit` has before it writes anything: data split and encoded, model built, strategy applied."""

    cfg: FitConfig  # with the default lr filled in
    task: Task
    metric: str
    splits: Splits
    doctor: Report  # the fast data doctor's report
    groups: Optional[list[str]]  # --group-column values of the test split, or None
    source: ModelSource
    model: torch.nn.Module
    processor: Any  # the task's tokenizer / image preprocess / audio processor
    params: FreezeSummary  # the strategy's record (trainable counts, lr scales, probe phase, adapter)
    data: dict[str, Encoded]  # split name -> encoded split
    probe_rows: Optional[list[int]]  # training rows scored at each validation, or None
    train_probe: Optional[Encoded]  # those rows, encoded
    weights: Optional[Any]  # train.oversample draw probabilities, or None
    device: torch.device
    precision: str
    threads: int


def prepare(cfg: FitConfig, announce: bool = True) -> Prepared:
    """`fit`'s steps 1-3 (also what `ftkit advise` profiles): everything that can fail on bad input
    runs here, before the run folder is written."""
    task = get_task(cfg.task)
    _check_reference(cfg, task)
    cfg = _with_default_lr(cfg, task)
    metric = metric_for(cfg, task)
    threads = dev.set_threads(cfg.train.threads)
    device = dev.pick_device(cfg.train.device)
    if device.type == "cpu":
        dev.keep_freed_memory()
    precision = dev.resolve_precision(cfg.train.precision, device)
    # 1. data: read, validate and split
    splits = limit_train(task.prepare_data(cfg), cfg)
    doctor = check_data(cfg, splits)  # fast data doctor: refuses leaked splits unless --allow-leakage
    failpoint("doctor")
    groups = check_eval(task, cfg, splits)  # eval settings + --group-column values
    # 2. model: pretrained body + a new head, seeded so reruns start identically
    source = resolve(cfg.model.name)
    _seed_global_generators(cfg.seed)
    model, processor = task.build(cfg, source, splits.labels)
    if cfg.model.init == "random":
        randomize(model)
    if task.capabilities.scaled_target:  # regression: train's target mean/std, kept on the model's config
        task.scale_target(model, splits.train)
    # 3. strategy: what trains
    params = get_strategy(cfg.strategy.name)(model, cfg)
    if cfg.model.freeze_word_embeddings:
        params = freeze_word_embeddings(model, params)
    set_dropout(model, cfg.model.dropout)
    model.to(device)
    data = {name: task.encode(part, processor, cfg, splits.labels) for name, part in splits.named().items()}
    if announce:  # said before the encoder cache, which can take minutes
        log.info("%s: %s, %d train / %s validation / %s test examples, %s on %s (%d threads)",
                 cfg.task, source.describe(), len(data["train"]), _n(data, "validation"), _n(data, "test"),
                 precision, device, threads)
    probe_rows = _probe_rows(splits, cfg, task) if "validation" in data else None
    train_probe = (task.encode(splits.train.subset(probe_rows), processor, cfg, splits.labels)
                   if probe_rows is not None else None)
    if params.cache_encoder:  # frozen-encoder: each split becomes its encoder outputs, computed once
        data = _cached_encoder(task, model, data, cfg, precision)
        train_probe = data["train"].subset(probe_rows) if probe_rows is not None else None
    return Prepared(cfg, task, metric, splits, doctor, groups, source, model, processor, params, data, probe_rows,
                    train_probe, _oversampling(cfg, task, data["train"]), device, precision, threads)


def _seed_global_generators(seed: int) -> None:
    """torch's and numpy's global generators, seeded so reruns (and a resumed process, whose
    checkpoint restores both) start identically: dropout draws from torch's, and transformers'
    SpecAugment masks (`_compute_mask_indices`) from numpy's."""
    import numpy as np

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def _final_evaluation(task, model, data: dict, cfg: FitConfig, labels: list[str], groups):
    """-> (metrics per held-out split, test probabilities to save, what predictors decide with:
    {"temperature": fitted or None, "thresholds": per-label list or None})."""
    metrics, probs = {}, {}
    for name in ("validation", "test"):
        if name in data:
            metrics[name], probs[name] = task.evaluate(model, data[name], labels, cfg.train.eval_batch_size,
                                                       FINAL_EVAL_PRECISION)
            failpoint("final-evaluation")
    thresholds = None
    if task.capabilities.thresholds:  # multi-label: per-label thresholds tuned on validation, used on both
        thresholds = task.tune_thresholds(data.get("validation"), probs.get("validation"), labels)
        for name in probs:
            metrics[name], probs[name] = task.at_thresholds(data[name], probs[name], labels, thresholds)
        thresholds = [round(float(t), 6) for t in thresholds]
    # ... honestly: bootstrap CIs, calibration (a temperature fitted on validation), per-group metrics
    test_probs, temperature = assess(task, cfg, data, probs, metrics, labels, groups)
    return metrics, test_probs, {"temperature": temperature, "thresholds": thresholds}


def _summary(cfg, source, labels, metrics, state, metric, params, runtime, data) -> dict:
    return {
        "task": cfg.task, "model": cfg.model.name, "model_source": source.describe(),
        "init": cfg.model.init, "strategy": cfg.strategy.name, "labels": labels, "metrics": metrics,
        "best": {"metric": metric, "value": state.best_value, "step": state.best_step,
                 "epoch": state.best_epoch},
        "early_stopping": {"stopped": state.stop_reason == "early stopping", "patience": cfg.train.patience},
        "stopped": {"early": state.stopped_early, "reason": state.stop_reason},
        "average": state.average,
        "history": state.history,
        "timing": {"train_seconds": round(state.train_seconds, 3),
                   "samples_per_second": round(state.samples / max(state.train_seconds, 1e-9), 2),
                   "eval_seconds": round(state.eval_seconds, 3),
                   "steps": state.global_step, "samples": state.samples},
        "params": params.as_dict(), "seed": cfg.seed, **runtime,
        "hyperparameters": {k: getattr(cfg.train, k) for k in
                            ("lr", "epochs", "batch_size", "grad_accum", "weight_decay", "label_smoothing",
                             "l2sp", "warmup_ratio", "schedule", "class_weights", "oversample")} | {"dropout": cfg.model.dropout},
        "data": {name: len(part) for name, part in data.items()},
    }


def _add_run_details(summary: dict, cfg: FitConfig, params, state, metric: str, extra: dict, l2sp,
                     resumed: bool) -> None:
    """Resume flag, probe record, overfitting diagnosis and L2-SP distance."""
    summary["resumed"] = bool(resumed)
    summary.update(extra)
    if params.probe is not None and not params.probe.then_full:
        _count_feature_time(summary["timing"], extra["probe"].get("feature_seconds", 0.0))
    summary["overfitting"] = diagnose(state.history, metric, state.stop_reason == "early stopping")
    if l2sp is not None:
        summary["l2sp"] = {"alpha": cfg.train.l2sp, "distance_to_pretrained": round(l2sp.distance(), 6)}


def _count_feature_time(timing: dict, seconds: float) -> None:
    """A linear probe's training cost includes computing the features (0 on a cache hit)."""
    timing["head_seconds"] = timing["train_seconds"]
    timing["feature_seconds"] = seconds
    timing["train_seconds"] = round(timing["head_seconds"] + seconds, 3)
    timing["samples_per_second"] = round(timing["samples"] / max(timing["train_seconds"], 1e-9), 2)


BEFORE_FILE = "test_before.json"  # the untouched model's test metrics, kept for --resume


def _zero_shot(task, model, data: dict, cfg: FitConfig, precision: str, run: RunDir, resume: bool):
    """Tasks whose pretrained model already does the task (speech recognition) are scored on the
    test split before any training, so the run shows what fine-tuning changed."""
    if not task.capabilities.zero_shot or "test" not in data:
        return None
    path = run.path / BEFORE_FILE
    if resume and path.is_file():
        return json.loads(path.read_text())
    tick = time.perf_counter()
    before = task.zero_shot(model, data["test"], cfg.train.eval_batch_size, FINAL_EVAL_PRECISION, cfg)
    failpoint("zero-shot")
    if before is not None:
        before["seconds"] = round(time.perf_counter() - tick, 3)
        write_json(path, before)
        log.info("before fine-tuning: test %s", ", ".join(f"{k} {before['metrics'][k]:.4f}"
                                                        for k in task.metrics if k in before["metrics"]))
    return before


def zero_shot_summary(before: dict, after: dict, metric: str, change_ci: dict | None = None) -> dict:
    """The pretrained model vs the fine-tuned one on the same test clips, in words too. With
    `change_ci` (a paired bootstrap of after - before) a change whose interval holds 0 is noise."""
    out = {"metric": metric, "before": before.get(metric), "after": after.get(metric)}
    if out["before"] is None or out["after"] is None:
        return {**out, "verdict": "no zero-shot comparison"}
    change = out["after"] - out["before"]
    out["change_points"] = round(100 * change, 2)
    lower = not DIRECTION.get(metric, True)
    improved = change < 0 if lower else change > 0
    interval = (change_ci or {}).get(metric)
    if interval is not None:
        out["change_ci_points"] = [round(100 * v, 2) for v in interval]
        noise = interval[0] <= 0 <= interval[1]
        why = f"paired 95% CI of the change [{100 * interval[0]:+.1f}, {100 * interval[1]:+.1f}]"
    else:
        ci = before.get("ci", {}).get(metric)
        noise = ci is not None and ci[0] <= out["after"] <= ci[1]
        why = "inside the zero-shot CI" if noise else "outside the zero-shot CI"
    word = "within noise" if noise else ("better than the pretrained model" if improved else "worse than the pretrained model")
    out["verdict"] = (f"zero-shot {metric} {out['before']:.4f} -> fine-tuned {out['after']:.4f} "
                      f"({change * 100:+.1f} points, {word}; {why})")
    return out


def _check_reference(cfg: FitConfig, task: Task) -> None:
    if cfg.retention.reference_data is not None and not task.capabilities.retention_reader:
        raise ConfigError(f"--reference-data: retention is measured for {', '.join(tasks_with('retention_reader'))}, "
                          f"not {cfg.task} (its head does not make one prediction per input)")


def _cached_encoder(task, model, data: dict, cfg: FitConfig, precision: str) -> dict:
    if not task.capabilities.encoder_cache:
        raise StrategyError(f"--strategy {cfg.strategy.name}: the {task.name} task has no encoder outputs to cache "
                            f"({', '.join(tasks_with('encoder_cache'))} has)")
    return task.cache_encoder(model, data, cfg, precision)


def _probe_rows(splits, cfg: FitConfig, task) -> list[int]:
    """A fixed, seeded subset of the training rows scored at each validation (overfitting); tasks
    whose evaluation is costly (speech recognition generates text) cap it."""
    import numpy as np

    n = min(len(splits.train), cfg.train.train_eval_size, task.train_eval_limit or len(splits.train))
    return sorted(np.random.default_rng(cfg.seed).choice(len(splits.train), size=n, replace=False).tolist())


def _probe_phase(ctx: ProbeContext, phase, run: RunDir, resume: bool):
    """Linear probe: the whole run. LP-FT: the first phase, in RUN/probe/, skipped once finished."""
    if not phase.then_full:
        state, record = run_probe(ctx, phase, run, resume)
        return state, record
    if phase.lr is None:  # LP-FT's head phase: the linear probe's own default lr for this task
        phase = replace(phase, lr=default_lr("linear-probe", ctx.task))
    sub = RunDir(run.path / "probe")
    if resume and probe_finished(sub):
        load_head(ctx.model, sub)
        return None, json.loads((sub.path / "phase.json").read_text())
    sub.path.mkdir(parents=True, exist_ok=True)
    state, record = run_probe(ctx, phase, sub, resume and sub.checkpoints.is_dir())
    failpoint("probe")
    record.update({"epochs": phase.epochs, "lr": phase.lr, "best": {"value": state.best_value, "epoch": state.best_epoch},
                   "train_seconds": round(state.train_seconds, 3), "history": state.history})
    write_json(sub.path / "phase.json", record)
    save_head(ctx.model, sub)  # last: its presence marks the phase done
    shutil.rmtree(sub.checkpoints, ignore_errors=True)
    return None, record


def l2sp_penalty(model, cfg: FitConfig):
    if not cfg.train.l2sp:
        return None
    # The pull is toward pretrained weights only: parameters outside the pretrained body (the new
    # head) are excluded; without a base-model prefix, the head layer group is.
    prefix = getattr(model, "base_model_prefix", "")
    names = [name for name, _ in model.named_parameters()]
    if prefix and any(n.startswith(prefix + ".") for n in names):
        new = {n for n in names if not n.startswith(prefix + ".")}
    else:
        new = {name for name, _ in layer_groups(model).head}
    return L2SP(model, cfg.train.l2sp, new)


def _oversampling(cfg: FitConfig, task: Task, train):
    """train.oversample: draw probabilities balancing the classes (one label per example only)."""
    if not cfg.train.oversample:
        return None
    labels = getattr(train, "labels", None)
    if labels is None or not task.capabilities.single_label:
        raise ConfigError(f"--set train.oversample=true: {cfg.task} has no single label per example to "
                          "balance; use --set train.class_weights=auto")
    return balanced_weights(labels)


def _with_default_lr(cfg: FitConfig, task) -> FitConfig:
    """No --lr given: the strategy's own default (a head alone needs a far larger step), or the
    task's for strategies that update the whole body."""
    if cfg.train.lr is not None:
        return cfg
    train = cfg.train.model_copy(update={"lr": train_lr(cfg, task)})
    return cfg.model_copy(update={"train": train})


def metric_for(cfg: FitConfig, task) -> str:
    metric = cfg.train.metric or task.default_metric
    if metric not in task.metrics:
        raise ConfigError(f"--set train.metric: {metric!r} is not a {task.name} metric "
                          f"(choose from {', '.join(task.metrics)})")
    return metric


def _n(data: dict, name: str) -> str:
    return str(len(data[name])) if name in data else "no"


def _save_model(task, model, processor, run: RunDir, cfg: FitConfig, labels: list[str], source,
                adapter: bool, decision: dict | None = None) -> None:
    """model/: full weights, or (LoRA) the adapter and head, which need the base model to load."""
    text = task.capabilities.text_max_length  # max_length means tokens of text
    meta = {"labels": labels, "max_length": cfg.data.max_length if text else None, "base_model": cfg.model.name,
            "base_model_location": str(source.location), "trust_remote_code": cfg.model.trust_remote_code,
            "eval_precision": FINAL_EVAL_PRECISION, "adapter": adapter,
            # eval.calibrate: predictors divide log-probabilities by the temperature; multi-label
            # predictors decide each label at its threshold (tuned on validation)
            "temperature": (decision or {}).get("temperature")}
    if (decision or {}).get("thresholds") is not None:
        meta["thresholds"] = decision["thresholds"]
    with atomic_path(run.model) as tmp:
        tmp.mkdir()
        task.save(model, processor, tmp, meta, cfg)
        failpoint("model-saving")


def _write_predictions(task, splits, test_probs, before: dict | None, run: RunDir) -> None:
    frame = task.prediction_frame(splits.test, test_probs, splits.labels)
    if before is not None:  # speech recognition: what the untouched model wrote, side by side
        frame["zero_shot"] = before["hypotheses"]
    _write_csv(frame, run.predictions)


def _write_csv(frame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
