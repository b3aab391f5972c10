"""`ftkit tune`, top to bottom: check -> study -> trials (within the budget) -> refit -> report.

    OUT/study.db        the Optuna study (SQLite): --resume continues it
    OUT/tune-config.yaml  the base config, search space and metric the study was started with
    OUT/trial-NNNN/     one ordinary run folder per trial (test split unscored, no model saved)
    OUT/best/           the best configuration refit: a complete run with model and test metrics
    OUT/trials.csv      one row per trial; OUT/trials.png value per trial and best so far
    OUT/tune.json       best params and value, trial counts, importances, seconds, the refit
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from pathlib import Path
from typing import Optional, Union

import yaml

from ftkit import distributed
from ftkit.config import FitConfig, to_dict, validate
from ftkit.data.doctor import check_data
from ftkit.errors import ConfigError, RunDirError
from ftkit.evaluation.metrics import DIRECTION
from ftkit.hpo import report as reports
from ftkit.hpo import space as spaces
from ftkit.hpo.objective import (FINISH_SECONDS, FIRST_TRIAL_SHARE, Trials, finished, import_optuna, make_study,
                                 retry_killed, run_local)
from ftkit.io import write_json, write_text
from ftkit.locks import folder_lock, holds_lock_only
from ftkit.reporting import after_run
from ftkit.tasks import get_task

log = logging.getLogger(__name__)

MIN_TRIAL_SECONDS = 5.0  # a trial cut shorter than this measures nothing
# The refit's time outside its loop, relative to a trial's: it also scores the test split (with
# bootstrap intervals) and saves the model (measured 2.5x with MiniLM on 600 / 1,000 reviews).
REFIT_OVERHEAD = 2.5


class Budget:
    """--time-budget: seconds left, measured from the start of `tune`."""

    def __init__(self, seconds: Optional[float]):
        self.seconds, self.start = seconds, time.monotonic()

    def left(self) -> Optional[float]:
        return None if self.seconds is None else self.seconds - (time.monotonic() - self.start)

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def parse_duration(text: Union[str, float, int, None]) -> Optional[float]:
    """'90s', '20m', '1.5h' or a number of seconds -> seconds."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text).lower())
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"--time-budget {text!r}: expected a duration like 90s, 20m or 1.5h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def tune(cfg: FitConfig, out: Union[str, Path], *, trials: Optional[int] = None, time_budget=None,
         resume: bool = False, sampler: str = "tpe", pruner: str = "median", executor: str = "local",
         address: Optional[str] = None, trial_cpus: int = 1, workers_per_trial: Optional[int] = None,
         refit: bool = True, refit_on_all: bool = False, space=None, search_strategy: Optional[bool] = None,
         points: Optional[list] = None, quiet: bool = False) -> dict:
    """Search hyperparameters with Optuna, refit the best configuration; returns what OUT/tune.json holds.

    `space`: a TuneSpec or a mapping {dotted key: {low, high, log} | {choices}} (None: the default
    space; `search_strategy` None searches the strategy when the config keeps the default one).
    `points`: configurations ({dotted key: value}) a new study tries first, e.g. the defaults.
    `workers_per_trial` N > 1 (--executor ray): each trial, and the refit, trains data-parallel on
    N Ray Train workers (distributed.workers; distributed.cpus_per_worker cores each)."""
    budget, out = Budget(parse_duration(time_budget)), Path(out)
    cfg = distributed.per_run(cfg, workers_per_trial)
    _check_options(trials, budget, executor, trial_cpus)
    check_workers(cfg, executor, trial_cpus, address)
    with folder_lock(out):  # one command per study folder; the OS releases it if we are killed
        return _tune(cfg, out, budget, trials, resume, sampler, pruner, executor, address, trial_cpus, refit,
                     refit_on_all, space, search_strategy, points, quiet)


def _tune(cfg, out, budget, trials, resume, sampler, pruner, executor, address, trial_cpus, refit, refit_on_all,
          space, search_strategy, points, quiet) -> dict:
    import_optuna()
    cfg, space_map = _prepare(cfg, out, resume, space, search_strategy)
    check_workers(cfg, executor, trial_cpus, address)  # --resume: the saved config's workers
    if refit_on_all and cfg.data.validation:
        raise ConfigError("--refit-on-all folds the validation split back into training; it needs the split "
                          "made from --train (drop --validation, or drop --refit-on-all)")
    metric, n_train = _check_data(cfg)
    maximize = DIRECTION.get(metric, True)
    study = make_study(out, "maximize" if maximize else "minimize", sampler, pruner, cfg.seed, resume)
    interrupted = retry_killed(study)
    for point in ([] if resume else points or []):
        study.enqueue_trial(point, skip_if_exists=False)
    ctx = Trials(cfg, space_map, metric, out, n_train)
    scale = _refit_scale(cfg, refit_on_all) if refit else 0.0
    if executor == "ray":
        from ftkit.hpo.ray_executor import run_ray  # optional: imports ray
        run_ray(study, ctx, budget, _wanted(study, trials), address, trial_cpus, scale, pruner != "none", quiet)
    else:
        _run_local(study, ctx, budget, trials, scale, quiet)
    refit_record = _refit(study, ctx, budget, refit_on_all, quiet, address) if refit else None
    return _report(study, ctx, out, budget, maximize, refit_record, interrupted, executor)


def _check_options(trials, budget: Budget, executor: str, trial_cpus: int) -> None:
    if trials is None and budget.seconds is None:
        raise ConfigError("give --trials N, --time-budget (e.g. 20m), or both")
    if trials is not None and trials < 1:
        raise ConfigError(f"--trials {trials}: expected at least 1")
    if executor not in ("local", "ray"):
        raise ConfigError(f"--executor {executor!r}: choose local or ray")
    if trial_cpus < 1:
        raise ConfigError(f"--trial-cpus {trial_cpus}: expected at least 1")


def check_workers(cfg: FitConfig, executor: str, trial_cpus: int, address: Optional[str]) -> None:
    """Trials on several workers: only Ray trials can (a local trial reports to Optuna in this
    process), each worker's threads are --cpus-per-worker, and one trial must fit this machine
    when Ray is started here (a cluster's size is checked once Ray is connected)."""
    d, flag = cfg.distributed, f"--workers-per-trial {cfg.distributed.workers}"
    if d.workers == 1:
        return
    if executor != "ray":
        raise ConfigError(f"{flag}: trials on several workers need --executor ray (the local executor runs "
                          "each trial in this process)")
    if trial_cpus != 1:
        raise ConfigError(f"--trial-cpus {trial_cpus} with {flag}: a trial's workers have --cpus-per-worker "
                          f"({d.cpus_per_worker}) cores each; drop --trial-cpus")
    if d.address is not None:
        raise ConfigError(f"--set distributed.address with {flag}: the trials' workers run on the tuning "
                          "cluster; give it as --address")
    cores = os.cpu_count() or 1
    if address is None and d.workers * d.cpus_per_worker > cores:
        raise ConfigError(f"{flag}: one trial's {d.workers} workers x {d.cpus_per_worker} CPU (--cpus-per-worker) "
                          f"do not fit this machine's {cores} cores; lower them, or tune on a cluster with --address")


def _prepare(cfg: FitConfig, out: Path, resume: bool, space, search_strategy):
    """New study: check OUT is free, resolve and save the space. Resume: the saved config and space."""
    saved = out / "tune-config.yaml"
    if resume:
        if not (out / "study.db").is_file() or not saved.is_file():
            raise RunDirError(f"nothing to resume in {out}: no study.db / tune-config.yaml")
        doc = yaml.safe_load(saved.read_text(encoding="utf-8"))
        _check_same(cfg, doc["config"], out)
        return validate(doc["config"]), {k: spaces.ParamSpec(**v) for k, v in doc["space"].items()}
    if out.exists() and not holds_lock_only(out):
        hint = "pass --resume to continue it" if (out / "study.db").is_file() else "choose another --out"
        raise RunDirError(f"--out {out} is not empty; {hint}")
    space_map = _space(cfg, space, search_strategy)
    out.mkdir(parents=True, exist_ok=True)
    write_text(saved, yaml.safe_dump({"config": to_dict(cfg), "space": spaces.describe(space_map)}, sort_keys=False))
    return cfg, space_map


def _space(cfg: FitConfig, space, search_strategy) -> dict:
    spec = space if isinstance(space, spaces.TuneSpec) or space is None else spaces.parse_spec({"space": space})
    if search_strategy is None:
        search_strategy = cfg.strategy.name == "full" and not cfg.strategy.model_extra
    default = spaces.default_space(cfg, bool(search_strategy))
    if spec is None:
        return default
    return {**default, **spec.space} if spec.extend else dict(spec.space)


def _check_same(cfg: FitConfig, saved: dict, out: Path) -> None:
    """--resume continues with the saved settings; settings given now must agree with them."""
    given, default = to_dict(cfg), to_dict(FitConfig())
    clash = [f"{section}.{key}" for section, values in given.items() if isinstance(values, dict)
             for key, value in values.items()
             if value != default[section].get(key) and value != saved.get(section, {}).get(key)]
    if clash:
        raise ConfigError(f"--resume continues the study in {out} with its saved settings; these differ: "
                          f"{', '.join(clash)} (drop them, or start a new --out)")


def _check_data(cfg: FitConfig) -> tuple[str, int]:
    """Read, split and check the data once (fails before any trial) -> (metric, training rows)."""
    task = get_task(cfg.task)
    splits = task.prepare_data(cfg)
    check_data(cfg, splits)  # leaked splits stop here; its warning is shown once, not per trial
    if splits.validation is None:
        raise ConfigError("tuning selects on validation scores: give --validation, or keep "
                          "data.validation_size above 0")
    from ftkit.runs.fit import metric_for  # torch: after the checks above

    return metric_for(cfg, task), len(splits.train)


def _refit_scale(cfg: FitConfig, on_all: bool) -> float:
    """Refit time relative to a trial's: more rows when validation is folded back in."""
    return 1.0 + (cfg.data.validation_size if on_all else 0.0)


def _wanted(study, trials: Optional[int]) -> Optional[int]:
    return None if trials is None else max(0, trials - finished(study))


def _run_local(study, ctx: Trials, budget: Budget, trials: Optional[int], scale: float, quiet: bool) -> None:
    while trials is None or finished(study) < trials:
        cap = trial_seconds(budget, study, scale)
        if cap is not None and cap < MIN_TRIAL_SECONDS:
            log.info("time budget: %.0fs left, kept for the refit; no further trial", budget.left())
            break
        run_local(study, ctx, cap, quiet)
        log.info("trial %d: %s", study.trials[-1].number, study.trials[-1].state.name.lower())


def measured(study) -> tuple[Optional[float], Optional[float]]:
    """(longest per-run overhead outside the loop: loading, scoring; longest training loop) so far."""
    timed = [t.user_attrs for t in study.get_trials(deepcopy=False) if "loop_seconds" in t.user_attrs]
    if not timed:
        return None, None
    return (max(a["seconds"] - a["loop_seconds"] for a in timed), max(a["loop_seconds"] for a in timed))


def trial_seconds(budget: Budget, study, scale: float) -> Optional[float]:
    """train.max_seconds for the next trial: what is left once the refit (timed like the longest
    trial so far) is reserved; None without a budget."""
    left = budget.left()
    if left is None:
        return None
    left -= FINISH_SECONDS
    overhead, loop = measured(study)
    if loop is None:  # nothing timed yet: give the first trial a share, keep the rest for the refit
        return left * FIRST_TRIAL_SHARE - min(20.0, 0.1 * left)
    cap = left - (loop * scale + REFIT_OVERHEAD * overhead) - overhead
    return cap if cap >= 0.25 * loop else 0.0  # a trial cut far shorter than the others measures little


def _refit(study, ctx: Trials, budget: Budget, on_all: bool, quiet: bool, address: Optional[str]) -> Optional[dict]:
    """Train the best configuration again, as a complete run: model saved, test split scored (on
    as many workers as the trials had, on the tuning cluster when there is one)."""
    from ftkit.runs.fit import fit_run
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        log.warning("no trial completed: nothing to refit")
        return None
    best = study.best_trial
    overhead, _ = measured(study)
    left = budget.left()
    cap = None if left is None else max(1.0, left - FINISH_SECONDS - REFIT_OVERHEAD * (overhead or 0.0))
    cfg = ctx.config(best.params, best.number, cap)
    cfg = cfg.model_copy(update={"out": str(ctx.out / "best")})
    if cfg.distributed.workers > 1 and address is not None:
        cfg = cfg.model_copy(update={"distributed": cfg.distributed.model_copy(update={"address": address})})
    if on_all:
        cfg = _on_all(cfg, best)
    log.info("refit of trial %d%s -> %s", best.number, " on train + validation" if on_all else "", cfg.out)
    path = fit_run(cfg, overwrite=True, quiet=quiet, command=["ftkit", "tune", "(refit)"])
    summary = json.loads((path / "summary.json").read_text())
    test = {k: v for k, v in summary["metrics"].get("test", {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {"run_dir": str(path), "trial": best.number, "on_all": on_all, "epochs": cfg.train.epochs,
            "stopped": summary["stopped"]["reason"], "test": test}


def _on_all(cfg: FitConfig, best) -> FitConfig:
    """Train on train + validation for the whole epochs the best trial needed to reach its best
    score (no validation is left to pick them; a fraction would also squeeze the lr schedule)."""
    epochs = min(math.ceil(best.user_attrs.get("best_epoch") or cfg.train.epochs), math.ceil(cfg.train.epochs))
    data = cfg.data.model_copy(update={"validation_size": 0.0})
    train = cfg.train.model_copy(update={"epochs": float(epochs), "eval_every": None})
    return cfg.model_copy(update={"data": data, "train": train})


def _report(study, ctx: Trials, out: Path, budget: Budget, maximize: bool, refit: Optional[dict],
            interrupted: int, executor: str) -> dict:
    frame = reports.trials_frame(study)
    reports.write_csv(frame, out / "trials.csv")
    reports.write_plot(frame, out / "trials.png", ctx.metric, maximize)
    importances, note = reports.importances(study)
    states = frame["state"].value_counts().to_dict() if len(frame) else {}
    report = {"metric": ctx.metric, "direction": "maximize" if maximize else "minimize", "executor": executor,
              "best": _best(study), "trials": {"complete": states.get("complete", 0), "pruned": states.get("pruned", 0),
                                               "failed": states.get("fail", 0), "total": len(frame),
                                               "interrupted_this_session": interrupted},
              "importances": importances, "importances_note": note, "seconds": round(budget.elapsed(), 1),
              "time_budget_seconds": budget.seconds, "space": spaces.describe(ctx.space), "refit": refit,
              "files": {"trials": str(out / "trials.csv"), "plot": str(out / "trials.png")}}
    write_json(out / "tune.json", report)
    after_run(out)  # report.html: trials, importances, links to each trial's report
    return report


def _best(study) -> Optional[dict]:
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    best = study.best_trial
    return {"trial": best.number, "value": best.value, "params": best.params,
            "lr": best.user_attrs.get("lr"), "best_epoch": best.user_attrs.get("best_epoch"),
            "run_dir": best.user_attrs.get("run_dir")}
