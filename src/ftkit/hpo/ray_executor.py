"""The Ray executor: the same trials run in parallel on a Ray cluster.

Ray Tune schedules the trials (each with its CPU request); Ray's OptunaSearch draws their
parameters from the same define-by-run space into the same OUT/study.db, and the ASHA scheduler
stops poor trials at their validation reports (Optuna records those as pruned). Every trial is
an ordinary `fit` run folder OUT/trial-NNNN, so trials.csv / tune.json read the same as with the
local executor. Without --address a local Ray instance is started and shut down afterwards; with
a remote cluster, OUT and the data must be on storage every node sees.

--workers-per-trial N (distributed.workers): each trial is a data-parallel fit on N Ray Train
workers (Ray Train v2 inside Tune). The trial's own process only waits, so it reserves no CPU
(WAITING_TRIAL); its workers reserve N x cpus_per_worker themselves, which is why the trials run at most
(cluster CPUs // that) at a time (Tune does not see the workers' requests). Every worker calls
Ray Train's report with the leader's validation score and TuneReportCallback hands it to the
trial, so ASHA still stops poor trials: asked to (AskingASHA), a trial ends as pruned at a
following validation, its workers and their placement group released as after any run.

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

from ftkit.config import DistributedConfig
from ftkit.distributed import Relay
from ftkit.errors import ConfigError
from ftkit.hpo import space as spaces
from ftkit.hpo.objective import FINISH_SECONDS, FIRST_TRIAL_SHARE, STUDY, Trials, fit_trial, record, study_url
from ftkit.tracking import default_uri

try:
    import ray
    from ray import tune as ray_tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch
    from ray.tune.integration.ray_train import TuneReportCallback
except ImportError:  # pragma: no cover - depends on the install
    raise ConfigError("--executor ray needs Ray Tune: pip install 'ftkit[ray]'") from None

log = logging.getLogger(__name__)

# A trial on several workers: its own process only waits while its Ray Train workers (placed by
# Ray Train v2 in a placement group of their own, outside the trial's) hold the cores. Tune refuses
# a trial that reserves nothing, so it reserves a token of memory and no CPU.
WAITING_TRIAL = {"cpu": 0, "memory": 1 << 20}
FINISHED = "ftkit_finished"
STOP_FILE = "stop-requested"  # in a trial's run folder: AskingASHA stopped it  # in a trial's last report only: the run ended on its own
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
        check_cluster(ctx.base.distributed, ray.cluster_resources(), address)
        _fit(study, _absolute(ctx), budget, wanted, trial_cpus, scale, prune, quiet)
    finally:
        if own:
            ray.shutdown()


def _fit(study, ctx: Trials, budget, wanted: Optional[int], trial_cpus: int, scale: float, prune: bool,
         quiet: bool) -> None:
    window = _window(budget, scale)
    max_seconds = None if window is None else max(1.0, window * TRIAL_SHARE)
    team = ctx.base.distributed.workers > 1  # the trial's workers reserve their own cores
    trainable = ray_tune.with_resources(
        ray_tune.with_parameters(_trainable, ctx=ctx, max_seconds=max_seconds, threads=None if team else trial_cpus),
        WAITING_TRIAL if team else {"cpu": trial_cpus})
    mode = "max" if study.direction.name == "MAXIMIZE" else "min"
    searcher = Searcher(space=DefineByRun(ctx.space, ctx.base.strategy.name), metric="value", mode=mode,
                        sampler=study.sampler, study_name=STUDY, storage=_storage(ctx.out), out=ctx.out)
    evals = math.ceil(_max_epochs(ctx)) * 4 + 2  # reports a trial makes at most (objective.eval_every)
    # --pruner median/halving: ASHA stops poor trials at their reports; none: every trial runs out.
    asha = dict(time_attr="training_iteration", max_t=2 * evals, grace_period=1, reduction_factor=2)
    scheduler = None if not prune else AskingASHA(**asha, out=ctx.out) if team else ASHAScheduler(**asha)
    slots = trial_slots(ctx.base.distributed, ray.cluster_resources(), trial_cpus)
    tuner = ray_tune.Tuner(
        trainable,
        tune_config=ray_tune.TuneConfig(metric="value", mode=mode, search_alg=searcher, scheduler=scheduler,
                                        num_samples=wanted if wanted is not None else -1,
                                        max_concurrent_trials=slots, time_budget_s=window,
                                        reuse_actors=not team),  # a trial's process holds its Ray Train run: a fresh one each
        run_config=ray_tune.RunConfig(name=f"session-{len(study.trials):04d}", storage_path=str(ctx.out / "ray"),
                                      verbose=0 if quiet else 1))
    tuner.fit()


class AskingASHA(ASHAScheduler):
    """ASHA for trials on several workers: a poor trial is asked to stop (STOP_FILE in its run
    folder, which its leader reads at each validation; the request arrives while the workers train
    on, so the run ends as pruned at a following validation) rather than killed. A killed trial's Ray Train workers would leave their placement group holding the cores:
    Ray Train removes it only through the state API of Ray's dashboard, which a minimal Ray lacks."""

    def __init__(self, *args, out: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.out = out

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        if decision != self.STOP or result.get(FINISHED):
            return decision
        stop = self.out / f"trial-{trial.config['trial_number']:04d}" / STOP_FILE
        stop.parent.mkdir(parents=True, exist_ok=True)
        stop.touch()
        return self.CONTINUE


def trial_slots(d: DistributedConfig, resources: dict, trial_cpus: int) -> int:
    """How many trials run at once: what one trial reserves (its process, or its workers), fitted
    into the cluster's CPUs (and GPUs, for GPU workers)."""
    if d.workers == 1:
        return max(1, int(resources.get("CPU", 1) // trial_cpus))
    slots = resources.get("CPU", 0) // (d.workers * d.cpus_per_worker)
    if d.gpus_per_worker:
        slots = min(slots, resources.get("GPU", 0) // (d.workers * d.gpus_per_worker))
    return max(1, int(slots))


def check_cluster(d: DistributedConfig, resources: dict, address: Optional[str]) -> None:
    """One trial's workers must fit the Ray cluster (Ray would otherwise wait for them forever)."""
    if d.workers == 1:
        return
    where = f"the Ray cluster at --address {address}" if address else "the local Ray instance"
    cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    if d.workers * d.cpus_per_worker > cpus:
        raise ConfigError(f"--workers-per-trial {d.workers}: one trial's {d.workers} workers x {d.cpus_per_worker} "
                          f"CPU (--cpus-per-worker) do not fit {where} ({cpus:g} CPUs in all)")
    if d.workers * d.gpus_per_worker > gpus:
        raise ConfigError(f"--workers-per-trial {d.workers}: one trial's {d.workers} workers x {d.gpus_per_worker:g} "
                          f"GPU (--gpus-per-worker) do not fit {where} ({gpus:g} GPUs in all)")


class Score:
    """A trial's on_validate: its validation score, reported to Ray (Tune in a one-process trial,
    Train on each worker of a trial on several, where TuneReportCallback passes it to Tune).
    `stop`: the file AskingASHA writes when it stops the trial (None: ASHA stops the trial itself)."""

    def __init__(self, metric: str, report, stop: Optional[str] = None):
        self.metric, self.report, self.stop = metric, report, stop

    def __call__(self, item: dict) -> bool:
        self.report({"value": item["validation"][self.metric]})
        return self.stop is not None and Path(self.stop).exists()  # True: the run ends as pruned


def _trainable(config: dict, ctx: Trials, max_seconds: Optional[float], threads: Optional[int]) -> None:
    """One trial inside a Ray worker: an ordinary fit run whose validations are Ray reports."""
    import ray.train

    values = dict(config)
    number = values.pop("trial_number")
    cfg = ctx.config(values, number, max_seconds, threads=threads)
    stop = Path(cfg.out) / STOP_FILE
    stop.unlink(missing_ok=True)  # a rerun of the trial (its parameters queued again) starts afresh
    on_validate = (Relay(Score(ctx.metric, ray.train.report, str(stop)), callbacks=(TuneReportCallback(),))
                   if cfg.distributed.workers > 1 else Score(ctx.metric, ray_tune.report))
    summary = fit_trial(cfg, on_validate)
    stop.unlink(missing_ok=True)  # asked to stop after it ended on its own, or honoured: not kept
    value = summary["best"]["value"]
    if summary["stopped"]["reason"] == "pruned":  # asked to stop by AskingASHA: Optuna records it pruned
        ray_tune.report({"value": float("nan") if value is None else value})
        return
    attrs: dict = {}
    record(attrs.__setitem__, summary, cfg)
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
