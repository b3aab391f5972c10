"""The local executor: an Optuna study in OUT/study.db whose trials are ordinary `fit` runs.

Each trial is OUT/trial-NNNN, trained with the test split unscored (selection never sees it) and
no model saved (the best configuration is refit). After each validation the trial reports its
score; the pruner may stop it there (`fit_run`'s `on_validate` hook), which Optuna records as
pruned. A kill leaves the trial RUNNING in the database; `--resume` marks it failed and queues
its parameters again (`retry_killed`).
"""
from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ftkit.config import FitConfig
from ftkit.errors import ConfigError
from ftkit.hpo import space as spaces
from ftkit.failpoints import failpoint

log = logging.getLogger(__name__)

STUDY = "ftkit"
EVALS_PER_EPOCH = 2  # validations per epoch in trials: the pruner needs more than one point per trial
INSTALL_HINT = "tuning needs Optuna: pip install 'ftkit[hpo]'"
# Budget shares both executors (tune.py, ray_executor.py) plan with:
FINISH_SECONDS = 3.0  # importances, plot and tune.json after the refit
FIRST_TRIAL_SHARE = 0.4  # of the budget, before any trial has been timed (the rest: refit)


def import_optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@dataclass
class Trials:
    """What every trial shares: the base config (with the trial cadence), space, metric."""

    base: FitConfig
    space: dict
    metric: str
    out: Path
    n_train: int

    def config(self, values: dict[str, Any], number: int, max_seconds: Optional[float],
               threads: Optional[int] = None) -> FitConfig:
        cfg = spaces.apply_values(self.base, values)
        train = {"max_seconds": max_seconds} if max_seconds else {}
        if self.base.train.eval_every is None:  # the user's cadence wins
            steps = math.ceil(math.ceil(self.n_train / cfg.train.batch_size) / cfg.train.grad_accum)
            train["eval_every"] = eval_every(steps, max(1, math.ceil(cfg.train.epochs * steps)))
        if threads:
            train["threads"] = threads
        return cfg.model_copy(update={"train": cfg.train.model_copy(update=train),
                                      "out": str(self.out / f"trial-{number:04d}")})


def eval_every(per_epoch: int, total: int) -> Optional[int]:
    """About EVALS_PER_EPOCH validations per epoch, at a step count that divides the run: the loop
    validates every N steps only, and the last step must be scored too. None: once per epoch."""
    target = per_epoch / EVALS_PER_EPOCH
    fits = [n for n in range(max(1, math.ceil(per_epoch / 4)), per_epoch + 1) if total % n == 0]
    return min(fits, key=lambda n: abs(n - target)) if fits else None


def make_study(out: Path, direction: str, sampler: str, pruner: str, seed: int, resume: bool):
    optuna = import_optuna()
    # Pruning starts once 2 trials finished, at a trial's first validation (half an epoch).
    pruners = {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
               "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
               "none": lambda: optuna.pruners.NopPruner()}
    if pruner not in pruners:
        raise ConfigError(f"--pruner {pruner!r}: choose from {', '.join(pruners)}")
    study = optuna.create_study(storage=study_url(out), study_name=STUDY,
                                direction=direction, sampler=make_sampler(sampler, seed),
                                pruner=pruners[pruner](), load_if_exists=resume)
    if study.trials:  # resumed: a sampler seeded as before would redraw the first session's values
        study.sampler = make_sampler(sampler, seed + len(study.trials))
    return study


def study_url(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def make_sampler(name: str, seed: int):
    optuna = import_optuna()
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"--sampler {name!r}: choose from tpe, random")


def retry_killed(study) -> int:
    """Trials a kill left RUNNING, or Ctrl-C failed: mark them failed and queue their parameters again."""
    from optuna.trial import TrialState

    handled = set(study.user_attrs)
    killed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.FAIL))
              if (t.state == TrialState.RUNNING or t.user_attrs.get("interrupted"))
              and f"killed-{t.number}" not in handled]
    for trial in killed:
        if trial.state == TrialState.RUNNING:
            study.tell(trial.number, state=TrialState.FAIL)
        study.set_user_attr(f"killed-{trial.number}", True)  # not counted, not retried twice
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
        shutil.rmtree(Path(trial.user_attrs.get("run_dir", "-")) / "checkpoints", ignore_errors=True)
        log.info("trial %d was interrupted: marked failed, its parameters queued again", trial.number)
    return len(killed)


def finished(study) -> int:
    """Trials that count toward --trials: complete, pruned, or failed on their own (not killed)."""
    from optuna.trial import TrialState

    killed = {k for k in study.user_attrs if k.startswith("killed-")}
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state == TrialState.FAIL and f"killed-{t.number}" not in killed))


def run_local(study, trials: Trials, max_seconds: Optional[float], quiet: bool) -> None:
    """One trial in this process (the caller loops, re-checking the budget between trials)."""
    optuna = import_optuna()

    def objective(trial) -> float:
        strategy = trials.base.strategy.name
        cfg = trials.config(spaces.suggest(trial, trials.space, strategy), trial.number, max_seconds)
        trial.set_user_attr("run_dir", cfg.out)
        try:
            summary = fit_trial(cfg, _Reporter(trial, trials.metric), quiet)
        except KeyboardInterrupt:  # Optuna marks it failed; --resume runs its parameters again
            trial.set_user_attr("interrupted", True)
            raise
        record(trial.set_user_attr, summary, cfg)
        if summary["stopped"]["reason"] == "pruned":
            raise optuna.TrialPruned(f"pruned at step {summary['timing']['steps']}")
        return _value(summary)

    # Errors of the user's making (bad space values) stop the study; a diverged trial just fails.
    study.optimize(objective, n_trials=1, catch=(RuntimeError, ValueError, ArithmeticError))


class _Reporter:
    """fit's on_validate hook: report the score at evaluation 1, 2, ... and ask the pruner."""

    def __init__(self, trial, metric: str):
        self.trial, self.metric, self.n = trial, metric, 0

    def __call__(self, record: dict) -> bool:
        failpoint("tune-trial")
        self.n += 1
        self.trial.report(record["validation"][self.metric], self.n)
        return self.trial.should_prune()


def fit_trial(cfg: FitConfig, on_validate, quiet: bool = True) -> dict:
    from ftkit.runs.fit import fit_run

    doctor = logging.getLogger("ftkit.data.doctor")
    level = doctor.level
    doctor.setLevel(logging.ERROR)  # tune checked the data once; each trial would repeat the warning
    try:
        path = fit_run(cfg, overwrite=True, quiet=quiet, on_validate=on_validate, score_test=False,
                       save_model=False, command=["ftkit", "tune", "(trial)"])
    finally:
        doctor.setLevel(level)
    return json.loads((path / "summary.json").read_text())


def record(set_attr, summary: dict, cfg: FitConfig) -> None:
    """What the report and the time budget need from a trial's summary."""
    timing = summary["timing"]
    loop = timing["train_seconds"] + timing.get("eval_seconds", 0.0)
    for key, value in {"seconds": timing["total_seconds"], "loop_seconds": round(loop, 3),
                       "steps": timing["steps"], "best_epoch": summary["best"]["epoch"],
                       "stopped": summary["stopped"]["reason"], "lr": cfg.train.lr,
                       "batch_size": cfg.train.batch_size, "epochs": cfg.train.epochs}.items():
        set_attr(key, value)


def _value(summary: dict) -> float:
    value = summary["best"]["value"]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError(f"no validation score ({value}): the trial diverged")  # recorded as failed
    return float(value)
