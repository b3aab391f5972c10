"""`ftkit auto`: doctor -> rank -> advise -> tune -> refit -> evaluate -> report, in one time budget.

An outer loop over the same pieces as the separate commands (never a second training loop):

    OUT/doctor.json      the data doctor (label noise only when the budget leaves room for it)
    OUT/advice.json      models ranked (several --models) and each strategy profiled and estimated
    OUT/tune/            a short Optuna study on a training sample (skipped when no room)
    OUT/final/           the chosen configuration on all the training rows (validation kept to pick
                         the best epoch): a complete run folder
    OUT/auto-state.json  each finished stage's result, as it ends: `--resume` goes on from there
    OUT/auto.json        what each stage chose and how long it took (written last: auto finished)

The budget counts from the start of the process. Each stage gets what the earlier ones left; the
final fit is planned first (its epochs are chosen from the advise estimate so it fits about half
of what is left) and the study gets the rest, each trial capped by `train.max_seconds`.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ftkit.config import FitConfig, to_dict, validate
from ftkit.errors import ConfigError, DataError, RunDirError
from ftkit.failpoints import failpoint
from ftkit.io import write_json
from ftkit.locks import LOCK_NAME, folder_lock, holds_lock_only
from ftkit.reporting import after_run
from ftkit.runs.rundir import RunDir
from ftkit.tasks import get_task

log = logging.getLogger(__name__)

# Of the time left after advise, the final fit's share (planned first; the study gets the rest).
# In short budgets the final fit's epochs and data move test accuracy more than a few trials whose
# validation scores differ by less than their noise, so it gets most of the time.
FINAL_SHARE = 0.75
MAX_FINAL_EPOCHS = 5  # a usual fine-tuning length at most (early stopping may end it sooner)
MIN_TRIALS = 3  # fewer trials than this is not a search: train the defaults instead
TARGET_TRIALS = 5  # trials run on smaller training samples until about this many fit
MIN_TRIAL_ROWS = 300  # a smaller training sample says little about the full data
MIN_TRIAL_STEPS = 100  # a trial of fewer optimizer steps barely leaves the prior: every trial ties
ESTIMATE_MARGIN = 1.15  # estimates are within ~15-30%: plan with headroom
LABEL_NOISE_BUDGET = 900.0  # seconds; below it the doctor skips the (model-based) label-noise check
SCORE_BUDGET = 900.0  # seconds; below it one model is not scored (transferability, probe baseline)
STATE_FILE = "auto-state.json"


@dataclass
class Clock:
    """The budget, counted from `started` (the CLI: the start of the process, imports included)."""

    budget: float
    started: float = field(default_factory=time.time)

    def used(self) -> float:
        return time.time() - self.started

    def left(self) -> float:
        # Kept back at the end: writing auto.json, printing, interpreter shutdown, and estimate error.
        return self.budget - self.used() - min(60.0, 10.0 + 0.03 * self.budget)


def auto_run(cfg: FitConfig, out: Path, *, time_budget: float, models: Optional[list[str]] = None,
             overwrite: bool = False, resume: bool = False, executor: str = "local", address: Optional[str] = None,
             strategy_given: Optional[bool] = None, started: Optional[float] = None, quiet: bool = False) -> dict:
    """The whole pipeline; returns what OUT/auto.json holds. The strategy is the advised one
    unless given (None: given when the config names one other than the default).

    `resume` (a killed auto): the stages that finished are not run again; their results and the
    choices made from them (model, strategy, plan) are read back from OUT/auto-state.json, the
    clock goes on from the time they used, and the stage that was killed resumes (the study
    continues, the final fit resumes from its checkpoint)."""
    if strategy_given is None:
        strategy_given = cfg.strategy.name != "full" or bool(cfg.strategy.model_extra)
    out = Path(out)
    with folder_lock(out):  # one command per folder; the OS releases it if we are killed
        state = _prepare_out(out, overwrite, resume)
        clock = Clock(float(time_budget), (started or time.time()) - state.used)
        doctor = state.stage("doctor", clock, lambda: _doctor(cfg, out, clock))
        advice = state.stage("advise", clock, lambda: _advise(cfg, models, out, clock, strategy_given))
        chosen = state.stage("choose", clock, lambda: _chosen(cfg, advice, clock, strategy_given), timed=False)
        cfg, plan = validate(chosen["config"]), Plan(**chosen["plan"], profile=advice["profiles"][chosen["strategy"]])
        tuned = state.stage("tune", clock, lambda: _tune(cfg, plan, out, clock, executor, address, quiet, resume))
        final = Path(state.stage("final", clock, lambda: str(_final(cfg, plan, tuned, out, clock, quiet, resume))))
        report = {"time_budget_seconds": time_budget, "seconds": round(clock.used(), 1),
                  "within_budget": clock.used() <= time_budget, "stages": state.seconds,
                  "doctor": doctor, "model": cfg.model.name, "strategy": cfg.strategy.name,
                  "recommendation": advice["recommendation"], "plan": plan.as_dict(),
                  "tune": tuned, "final_run": str(final), "final": _brief(final)}
        if state.resumed:
            report["resumed_stages"] = state.resumed
        write_json(out / "auto.json", report)
        after_run(out)
        return report


class State:
    """OUT/auto-state.json: each finished stage's result and the seconds used so far, written as
    each stage ends (a stage killed midway is not in it and runs, or resumes, again)."""

    def __init__(self, path: Path, resume: bool):
        self.path = path
        saved = json.loads(path.read_text(encoding="utf-8")) if resume and path.is_file() else {}
        self.results: dict = saved.get("results", {})
        self.seconds: dict = saved.get("stages", {})
        self.used: float = saved.get("used_seconds", 0.0)
        self.resumed: list[str] = []

    def stage(self, name: str, clock: Clock, work, timed: bool = True):
        if name in self.results:
            self.resumed.append(name)
            return self.results[name]
        tick = clock.used()
        log.info("auto: %s (%.0f s used of %.0f)", name, tick, clock.budget)
        result = work()
        failpoint("auto-stage")
        self.results[name] = result
        if timed:
            self.seconds[name] = {"seconds": round(clock.used() - tick, 1), "ended_at": round(clock.used(), 1)}
        write_json(self.path, {"results": self.results, "stages": self.seconds, "used_seconds": clock.used()})
        return result


# ---------------------------------------------------------------- stages

def _doctor(cfg: FitConfig, out: Path, clock: Clock) -> dict:
    """Data problems stop auto before any training; warnings are reported and training goes on."""
    from ftkit.data.doctor import Options, diagnose, refuse_leakage, write

    report = diagnose(cfg, get_task(cfg.task), Options(label_noise=clock.budget >= LABEL_NOISE_BUDGET))
    write(report, Path(out) / "doctor.json")
    if not cfg.data.allow_leakage:
        refuse_leakage(report)
    schema = report.get("schema")
    if schema is not None and schema.severity == "error":
        raise DataError(f"the data doctor found problems that stop training: {schema.message} "
                        f"({Path(out) / 'doctor.json'}; `ftkit doctor` shows them)")
    return {k: report.summary[k] for k in ("errors", "warnings", "failed", "warned")}


def _advise(cfg: FitConfig, models, out: Path, clock: Clock, strategy_given: bool) -> dict:
    from ftkit.advisor.run import advise_run

    strategies = [cfg.strategy.name] if strategy_given else _candidates(cfg)
    # In one process: a fresh process per strategy gives each its own peak memory, but costs a
    # torch import and a model load each, which a time budget cannot spare. One model is only
    # scored (a feature pass over the training data) when the budget is roomy.
    advice = advise_run(cfg, models=models, strategies=strategies, budget=max(clock.left(), 1.0), isolate=False,
                        score_models=clock.budget >= SCORE_BUDGET)
    write_json(Path(out) / "advice.json", advice)
    return advice


def _candidates(cfg: FitConfig) -> list[str]:
    """The strategies worth profiling for this much data (advise's order, first two), and the
    linear probe (cheap to profile, and the fallback when time is short)."""
    from collections import Counter

    from ftkit.advisor.recommend import MODERATE_ORDER, PLENTY_ORDER, PLENTY_PER_CLASS
    from ftkit.data.splits import limit_train
    splits = limit_train(get_task(cfg.task).prepare_data(cfg), cfg)
    labels = getattr(splits.train, "labels", None)
    per_class = len(splits.train) / max(len(Counter(labels)) if labels else 1, 1)
    order = PLENTY_ORDER if per_class >= PLENTY_PER_CLASS else MODERATE_ORDER
    return [name for name in order if name != "linear-probe"][:2] + ["linear-probe"]


@dataclass
class Plan:
    """How the time left after advise is spent."""

    final_epochs: float
    final_seconds: float  # estimated
    n_train: int
    trial_rows: Optional[int] = None  # None: no study
    trial_seconds: Optional[float] = None  # estimated, each
    tune_seconds: float = 0.0
    profile: dict = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k != "profile"}


def _choose(cfg: FitConfig, advice: dict, clock: Clock, strategy_given: bool) -> tuple[FitConfig, Plan]:
    """The advised model and strategy, and the plan: final-fit epochs first, then trials."""
    rec = advice["recommendation"]
    name = cfg.strategy.name if strategy_given else (rec.get("strategy") or "linear-probe")
    if rec["action"] == "don't fine-tune" and not strategy_given:
        log.warning("advise: don't fine-tune (%s); auto trains a linear probe so a run exists to inspect",
                    "; ".join(rec["reasons"]))
    from ftkit.selection.rank import candidate_config

    tree = to_dict(candidate_config(cfg, advice["model"]))  # the best ranked of several --models
    if name != cfg.strategy.name:  # the advised strategy, without the settings of the configured one
        tree["strategy"] = {"name": name}
    cfg = validate(tree)
    return cfg, _plan(advice["profiles"][name], cfg, clock.left())


def _chosen(cfg: FitConfig, advice: dict, clock: Clock, strategy_given: bool) -> dict:
    """`_choose`, as auto-state.json keeps it."""
    cfg, plan = _choose(cfg, advice, clock, strategy_given)
    return {"config": to_dict(cfg), "strategy": cfg.strategy.name, "plan": plan.as_dict()}


def _plan(profile: dict, cfg: FitConfig, left: float) -> Plan:
    from ftkit.advisor.estimate import estimate_fit

    train_rows = int(profile["data"]["n"]["train"])
    plan = Plan(final_epochs=_final_epochs(profile, FINAL_SHARE * left) or _final_epochs(profile, left),
                final_seconds=0.0, n_train=train_rows, profile=profile)
    if not plan.final_epochs:
        raise ConfigError(f"--time-budget: {left:.0f} s are left after the checks and the advice, and even a "
                          f"tenth of an epoch of {cfg.strategy.name} needs more; give more time "
                          "(advice.json has the estimates), or less data / a smaller max_length")
    plan.final_seconds = round(ESTIMATE_MARGIN * estimate_fit(profile, plan.final_epochs)["total_seconds"], 1)
    if "steps" not in profile:  # a linear probe: nothing worth searching
        return plan
    room = left - plan.final_seconds
    cost = lambda rows: ESTIMATE_MARGIN * estimate_fit(profile, 1.0, rows)["total_seconds"]  # noqa: E731
    smallest = min(train_rows, max(MIN_TRIAL_ROWS, MIN_TRIAL_STEPS * cfg.train.batch_size))
    rows = train_rows
    while rows > smallest and TARGET_TRIALS * cost(rows) > room:
        rows = max(smallest, rows // 2)
    if MIN_TRIALS * cost(rows) <= room:
        plan.trial_rows, plan.trial_seconds, plan.tune_seconds = rows, round(cost(rows), 1), round(room, 1)
    return plan


def _final_epochs(final: dict, seconds: float) -> float:
    from ftkit.advisor.estimate import epochs_within

    return min(epochs_within(final, seconds / ESTIMATE_MARGIN), MAX_FINAL_EPOCHS)


def _tune(cfg: FitConfig, plan: Plan, out: Path, clock: Clock, executor: str, address, quiet: bool,
          resume: bool = False) -> Optional[dict]:
    """A short study of the learning rate and regularisation, one epoch on a training sample;
    the configured defaults are its first trial, so the search can only add to them."""
    if plan.trial_rows is None:
        log.info("auto: no room for a search in the budget; the final fit uses the defaults")
        return None
    from ftkit.hpo.tune import tune
    from ftkit.strategies import train_lr
    lr = train_lr(cfg, get_task(cfg.task))
    space = {"train.lr": {"low": lr / 4, "high": min(lr * 5, 0.5), "log": True},
             "train.weight_decay": {"low": 0.0, "high": 0.1},
             "train.warmup_ratio": {"low": 0.0, "high": 0.2}}
    full = plan.trial_rows >= int(plan.profile["data"]["n"]["train"])
    data = cfg.data.model_copy(update={"train_rows": None if full else plan.trial_rows})
    train = cfg.train.model_copy(update={"epochs": 1.0, "lr": lr})
    trials_cfg = cfg.model_copy(update={"data": data, "train": train})
    budget = max(1.0, min(plan.tune_seconds, clock.left() - plan.final_seconds))
    # First a coarse log grid of the lr around the default (the setting that matters most, and
    # TPE's first trials are random), then TPE over all three.
    points = [{"train.lr": lr * f, "train.weight_decay": cfg.train.weight_decay,
               "train.warmup_ratio": cfg.train.warmup_ratio} for f in (1.0, 3.0, 1 / 3)]
    folder = Path(out) / "tune"
    again = resume and (folder / "study.db").is_file() and (folder / "tune-config.yaml").is_file()
    return tune(trials_cfg, folder, time_budget=budget, refit=False, space=space, resume=again,
                search_strategy=False, points=points, executor=executor, address=address, quiet=quiet)


def _final(cfg: FitConfig, plan: Plan, tuned: Optional[dict], out: Path, clock: Clock, quiet: bool,
           resume: bool = False) -> Path:
    """The chosen configuration on all the training data, capped to the time left."""
    from ftkit.advisor.estimate import estimate_fit
    from ftkit.hpo.space import apply_values
    from ftkit.runs.fit import fit_run

    folder = RunDir(Path(out) / "final")
    if resume and folder.began():  # killed during the final fit: it resumes with its saved settings
        log.info("auto: final fit resumes in %s", folder.path)
        saved = validate({**folder.saved_config(), "out": str(folder.path)})
        plan.final_epochs = saved.train.epochs
        return fit_run(saved, resume=True, quiet=quiet, command=["ftkit", "auto", "(final)"])
    best = (tuned or {}).get("best") or {}
    if best.get("params"):
        cfg = apply_values(cfg, best["params"])
    # Epochs again from the time really left (the study may have ended early or late).
    epochs = _final_epochs(plan.profile, clock.left()) or plan.final_epochs
    after = estimate_fit(plan.profile, epochs)
    finish = ESTIMATE_MARGIN * (after["final_seconds"] + after["setup_seconds"])
    cap = max(1.0, clock.left() - finish)
    plan.final_epochs = epochs
    train = cfg.train.model_copy(update={"epochs": epochs, "max_seconds": cap})
    # The validation split stays: the study scored one epoch on a sample, the final fit runs more
    # epochs on all the rows, where the study's (often larger) lr can overfit. Refit on train +
    # validation without a split to pick the best epoch from, it scored 0.822 on Rotten Tomatoes
    # (test loss 0.78) where Trainer's defaults got 0.850 (bench/RESULTS.md); with it, early
    # stopping and the best epoch's weights guard the final model.
    cfg = cfg.model_copy(update={"train": train, "out": str(Path(out) / "final")})
    log.info("auto: final fit, %s, %g epochs, at most %.0f s of training -> %s", cfg.strategy.name, epochs, cap, cfg.out)
    return fit_run(cfg, overwrite=True, quiet=quiet, command=["ftkit", "auto", "(final)"])


# ---------------------------------------------------------------- helpers

def _prepare_out(out: Path, overwrite: bool, resume: bool) -> State:
    state = State(out / STATE_FILE, resume)
    if resume:
        if (out / "auto.json").is_file():
            raise RunDirError(f"{out} holds a finished auto run (auto.json); nothing to resume")
        return state
    if not holds_lock_only(out):
        if not overwrite:
            hint = "pass --resume to continue it" if (out / STATE_FILE).is_file() else "pass --overwrite to replace it"
            raise RunDirError(f"--out {out} is not empty; {hint}, or choose another folder")
        for child in out.iterdir():
            if child.name != LOCK_NAME:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    return state


def _brief(run: Path) -> dict:
    s = json.loads((Path(run) / "summary.json").read_text())
    return {"metric": s["best"]["metric"], "validation": s["best"]["value"],
            "test": {k: v for k, v in s["metrics"].get("test", {}).items() if isinstance(v, float)},
            "test_ci": s["metrics"].get("test", {}).get("ci"), "hyperparameters": s["hyperparameters"],
            "stopped": s.get("stopped"), "train_seconds": s["timing"]["train_seconds"]}


def process_start() -> float:
    """When this process started (wall clock), so `ftkit auto`'s budget covers its start-up too."""
    return time.time() - _process_age()


def _process_age() -> float:
    """Seconds since this process started (Linux /proc); 0 where unknown."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def check_budget(seconds: Optional[float]) -> float:
    if seconds is None or seconds <= 0:
        raise ConfigError("--time-budget: give the time auto may use, e.g. 30m, 1h or 900s")
    return seconds
