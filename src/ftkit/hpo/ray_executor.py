"""The Ray executor: the same trials run in parallel on a Ray cluster.

Ray Tune schedules the trials (each with its CPU request); Ray's OptunaSearch draws their
parameters from the same define-by-run space into the same OUT/study.db, and the ASHA scheduler
stops poor trials at their validation reports (Optuna records those as pruned). Every trial is
an ordinary `fit` run folder OUT/trial-NNNN, so trials.csv / tune.json read the same as with the
local executor. Without --address a local Ray instance is started and shut down afterwards; with
a remote cluster, OUT and the data must be on storage every node sees.

Imported only for `--executor ray`: the local executor never needs Ray.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

from ftkit.errors import ConfigError
from ftkit.hpo import space as spaces
from ftkit.hpo.objective import FINISH_SECONDS, FIRST_TRIAL_SHARE, STUDY, Trials, fit_trial, record, study_url
from ftkit.tracking import default_uri

try:
    import ray
    from ray import tune as ray_tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch
except ImportError:  # pragma: no cover - depends on the install
    raise ConfigError("--executor ray needs Ray Tune: pip install 'ftkit[ray]'") from None

log = logging.getLogger(__name__)

FINISHED = "ftkit_finished"  # in a trial's last report only: the run ended on its own
TRIAL_SHARE = 0.5  # of the trials' time window, per trial: at least two waves of trials fit


class DefineByRun:
    """Ray's searcher calls this with an Optuna trial; a class (not a closure) so it pickles."""

    def __init__(self, space: dict, strategy: str):
        self.space, self.strategy = space, strategy

    def __call__(self, trial) -> dict:
        spaces.suggest(trial, self.space, self.strategy)
        return {"trial_number": trial.number}  # names the run folder trial-NNNN


class Searcher(OptunaSearch):
    """OptunaSearch, except that a trial the scheduler stopped is recorded as pruned (not as
    complete with its last score), and each trial keeps its timing for the report and budget."""

    def __init__(self, *args, out: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.out = out

    def on_trial_complete(self, trial_id: str, result: Optional[dict] = None, error: bool = False):
        trial = self._ot_trials.get(trial_id)
        if trial is not None:
            run_dir = self.out / f"trial-{trial.number:04d}"
            trial.set_user_attr("run_dir", str(run_dir))
            for key, value in (result or {}).items():
                if key.startswith("attr_"):
                    trial.set_user_attr(key[5:], value)
            if not error and not (result or {}).get(FINISHED):
                result = None  # stopped early by ASHA or the time budget: Optuna records "pruned"
                shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # nobody resumes it
        super().on_trial_complete(trial_id, result, error)


def run_ray(study, ctx: Trials, budget, wanted: Optional[int], address: Optional[str], trial_cpus: int,
            scale: float, prune: bool, quiet: bool) -> None:
    if wanted == 0:
        return
    own = not ray.is_initialized()
    if own:
        started = time.monotonic()
        # Local: every core of this machine; else the cluster at --address.
        ray.init(address=address, num_cpus=None if address else os.cpu_count(), include_dashboard=False,
                 log_to_driver=not quiet, logging_level=logging.WARNING)
        log.info("ray: %s in %.1fs", address or "local instance started", time.monotonic() - started)
    try:
        _fit(study, _absolute(ctx), budget, wanted, trial_cpus, scale, prune, quiet)
    finally:
        if own:
            ray.shutdown()


def _fit(study, ctx: Trials, budget, wanted: Optional[int], trial_cpus: int, scale: float, prune: bool,
         quiet: bool) -> None:
    window = _window(budget, scale)
    max_seconds = None if window is None else max(1.0, window * TRIAL_SHARE)
    trainable = ray_tune.with_resources(
        ray_tune.with_parameters(_trainable, ctx=ctx, max_seconds=max_seconds, threads=trial_cpus),
        {"cpu": trial_cpus})
    mode = "max" if study.direction.name == "MAXIMIZE" else "min"
    searcher = Searcher(space=DefineByRun(ctx.space, ctx.base.strategy.name), metric="value", mode=mode,
                        sampler=study.sampler, study_name=STUDY, storage=_storage(ctx.out), out=ctx.out)
    evals = math.ceil(_max_epochs(ctx)) * 4 + 2  # reports a trial makes at most (objective.eval_every)
    # --pruner median/halving: ASHA stops poor trials at their reports; none: every trial runs out.
    scheduler = (ASHAScheduler(time_attr="training_iteration", max_t=2 * evals, grace_period=1, reduction_factor=2)
                 if prune else None)
    slots = max(1, int(ray.cluster_resources().get("CPU", 1) // trial_cpus))
    tuner = ray_tune.Tuner(
        trainable,
        tune_config=ray_tune.TuneConfig(metric="value", mode=mode, search_alg=searcher, scheduler=scheduler,
                                        num_samples=wanted if wanted is not None else -1,
                                        max_concurrent_trials=slots, time_budget_s=window, reuse_actors=True),
        run_config=ray_tune.RunConfig(name=f"session-{len(study.trials):04d}", storage_path=str(ctx.out / "ray"),
                                      verbose=0 if quiet else 1))
    tuner.fit()


def _trainable(config: dict, ctx: Trials, max_seconds: Optional[float], threads: int) -> None:
    """One trial inside a Ray worker: an ordinary fit run whose validations are Ray reports."""
    values = dict(config)
    number = values.pop("trial_number")
    cfg = ctx.config(values, number, max_seconds, threads=threads)

    def on_validate(item: dict) -> bool:
        ray_tune.report({"value": item["validation"][ctx.metric]})
        return False  # ASHA decides in the driver and stops the worker itself

    summary = fit_trial(cfg, on_validate)
    attrs: dict = {}
    record(attrs.__setitem__, summary, cfg)
    value = summary["best"]["value"]
    ray_tune.report({"value": float("nan") if value is None else value, FINISHED: 1,
                     **{f"attr_{k}": v for k, v in attrs.items()}})


def _window(budget, scale: float) -> Optional[float]:
    """Seconds the trials may take: the budget left, less a refit reserve (nothing is timed yet)."""
    left = budget.left()
    if left is None:
        return None
    left -= FINISH_SECONDS
    return max(1.0, left * (FIRST_TRIAL_SHARE + (1 - FIRST_TRIAL_SHARE) * (0 if scale else 1)))


def _max_epochs(ctx: Trials) -> float:
    param = ctx.space.get("train.epochs")
    return max(ctx.base.train.epochs, param.high if param and param.high else 0,
               max(param.choices) if param and param.choices else 0)


def _storage(out: Path):
    import optuna
    return optuna.storages.RDBStorage(study_url(out))


def _absolute(ctx: Trials) -> Trials:
    """Ray runs each trial in its own working folder: data and model paths must be absolute."""
    tree = ctx.base.model_dump(mode="json")
    for key in ("train", "validation", "test"):
        if tree["data"][key] and Path(tree["data"][key]).exists():
            tree["data"][key] = str(Path(tree["data"][key]).resolve())
    if Path(tree["model"]["name"]).expanduser().is_dir():
        tree["model"]["name"] = str(Path(tree["model"]["name"]).expanduser().resolve())
    if tree["tracking"]["backend"] != "none" and not tree["tracking"]["uri"]:
        tree["tracking"]["uri"] = default_uri(None)[0]  # the driver's ./mlruns, not each trial's folder
    return replace(ctx, base=type(ctx.base).model_validate(tree), out=ctx.out.resolve())
