"""`ftkit advise`, top to bottom: rank the models -> profile each strategy -> estimate -> advise.

Each strategy is profiled in a fresh process (as `ftkit compare` trains them), so its setup
time and peak memory are its own, not what an earlier profile left loaded or allocated.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import shlex
import tempfile
import time
from pathlib import Path
from typing import Optional

from ftkit.advisor.estimate import epochs_within, estimate_fit, trials_within
from ftkit.advisor.recommend import recommend
from ftkit.config import FitConfig, to_dict
from ftkit.errors import ConfigError, FtkitError, StrategyError

log = logging.getLogger(__name__)

DEFAULT_STRATEGIES = ("full", "lora", "lp-ft", "linear-probe")
UNITS = {"s": 1, "m": 60, "h": 3600}


def advise_run(cfg: FitConfig, *, models: Optional[list[str]] = None, strategies=None, budget: Optional[float] = None,
               target_metric: Optional[float] = None, isolate: bool = True, fit_flags: Optional[list[str]] = None,
               score_models: bool = True) -> dict:
    """The whole advice as data (what advice.json holds). `fit_flags`: the user's `ftkit fit`
    arguments, from which the recommended command is built. `score_models=False` skips the
    transferability scores of a single model (auto, when its budget cannot spare a feature pass)."""
    from ftkit.strategies import get_strategy

    from ftkit.tasks import get_task

    started = time.perf_counter()
    task = get_task(cfg.task)
    names = list(strategies or task.advise_strategies or DEFAULT_STRATEGIES)
    for name in names:
        get_strategy(name)  # unknown names fail before any compute
    if not task.capabilities.feature_probe and not (models and len(models) > 1):
        ranking = {"available": False, "reason": f"no frozen-feature scores for {cfg.task}", "models": [],
                   "chosen": cfg.model.name, "probe_accuracy": None}
    elif score_models or (models and len(models) > 1):
        ranking = rank_models(cfg, models or [cfg.model.name])
    else:
        ranking = {"available": False, "reason": "not scored", "models": [], "chosen": cfg.model.name,
                   "probe_accuracy": None}
    from ftkit.selection.rank import candidate_config
    cfg = candidate_config(cfg, ranking["chosen"])  # `random:NAME` is NAME from random weights
    profiles = profile_strategies(cfg, names, isolate=isolate)
    ok = {n: p for n, p in profiles.items() if "error" not in p}
    if not ok:
        raise ConfigError("advise: every strategy failed to profile: " +
                          "; ".join(f"{n}: {p['error']}" for n, p in profiles.items()))
    first = next(iter(ok.values()))
    table = {n: strategy_row(p, budget) if n in ok else {"error": p["error"]} for n, p in profiles.items()}
    advice = recommend(_rule_facts(first, cfg), {n: r for n, r in table.items() if "error" not in r},
                       budget=budget, target_metric=target_metric, probe_accuracy=ranking.get("probe_accuracy"),
                       memory_mb=available_memory_mb(first["device"]))
    advice["command"] = fit_command(fit_flags or [], advice, cfg, models is not None and len(models) > 1)
    return {"model": ranking["chosen"], "models": ranking, "data": first["data"], "model_facts": first["model"],
            "machine": {"device": first["device"], "precision": first["precision"], "threads": first["threads"],
                        "memory_mb": available_memory_mb(first["device"])},
            "budget_seconds": budget, "target_metric": target_metric, "strategies": table,
            "recommendation": advice, "profiles": profiles,
            "advise_seconds": round(time.perf_counter() - started, 1), "config": to_dict(cfg)}


def strategy_row(profile: dict, budget: Optional[float]) -> dict:
    """One strategy's line of the advice: its estimate, memory and what fits the budget."""
    est = estimate_fit(profile)
    return {"total_seconds": est["total_seconds"], "train_seconds": est["train_seconds"], "estimate": est,
            "peak_memory_mb": profile["peak_memory_mb"], "trainable_params": profile["model"]["trainable_params"],
            "total_params": profile["model"]["total_params"],
            "trials_within_budget": trials_within(est["total_seconds"], budget),
            "max_epochs": None if budget is None else epochs_within(profile, budget)}


def rank_models(cfg: FitConfig, models: list[str]) -> dict:
    """Transferability of each candidate (best first) and the one to advise on."""
    from ftkit.advisor.facts import transferability

    scores = transferability(cfg, models)
    rows = scores["models"]
    chosen = rows[0]["model"] if rows else models[0]
    probe = next((r.get("probe_accuracy") for r in rows if r["model"] == chosen), None)
    return {**scores, "chosen": chosen, "probe_accuracy": probe}


def profile_strategies(cfg: FitConfig, strategies: list[str], *, isolate: bool = True) -> dict[str, dict]:
    """Strategy name -> its profile (profile.profile_strategy), or {"error": message}."""
    out = {}
    for name in strategies:
        run_cfg = cfg.model_copy(deep=True)
        run_cfg.strategy.name = name
        log.info("profiling %s ...", name)
        out[name] = _profile_apart(run_cfg) if isolate else _profile_here(run_cfg)
    return out


def _profile_here(cfg: FitConfig) -> dict:
    from ftkit.advisor.profile import profile_strategy

    try:
        return profile_strategy(cfg)
    except StrategyError as err:  # e.g. LoRA on a model without adaptable layers: the others still count
        return {"error": str(err)}


def _profile_apart(cfg: FitConfig) -> dict:
    with tempfile.TemporaryDirectory(prefix="ftkit-advise-") as tmp:
        path = Path(tmp) / "profile.json"
        process = multiprocessing.get_context("spawn").Process(
            target=_child, args=(to_dict(cfg), str(path), logging.getLogger().level))
        process.start()
        process.join()
        if not path.is_file():
            return {"error": f"the profiling process failed (exit status {process.exitcode})"}
        return json.loads(path.read_text())


def _child(config: dict, path: str, level: int) -> None:
    logging.basicConfig(level=level, format="%(message)s", force=True)
    _quiet_transformers()
    try:
        result = _profile_here(FitConfig.model_validate(config))
    except FtkitError as err:
        result = {"error": str(err)}
    Path(path).write_text(json.dumps(result))


def _quiet_transformers() -> None:
    try:
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def _rule_facts(profile: dict, cfg: FitConfig) -> dict:
    from ftkit.tasks import get_task

    data = profile["data"]
    return {"n_train": data["n"]["train"], "n_classes": data["n_classes"],
            "min_class_count": data.get("min_class_count"), "epochs": cfg.train.epochs, "task": cfg.task,
            "encoder_cache": get_task(cfg.task).capabilities.encoder_cache}


def available_memory_mb(device: str) -> float:
    """GPU memory of the device, or the machine's available RAM."""
    if device.startswith("cuda"):
        import torch
        return torch.cuda.get_device_properties(0).total_memory / 2**20
    try:  # Linux: what new allocations can get without swapping (free + reclaimable cache)
        with open("/proc/meminfo", encoding="ascii") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20


def parse_budget(text) -> Optional[float]:
    """'90s', '30m', '1.5h' or a number of seconds -> seconds."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text).lower())
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"--budget {text!r}: expected a duration like 90s, 30m or 1.5h")
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def fit_command(flags: list[str], advice: dict, cfg: FitConfig, set_model: bool) -> Optional[str]:
    """`ftkit fit` with the user's flags and the advised strategy / epochs (None: don't fit)."""
    if advice["strategy"] is None:
        return None
    words = ["ftkit", "fit", *flags, "--strategy", advice["strategy"]]
    if set_model:
        words += ["--model", cfg.model.name]
    if advice["epochs"] is not None and advice["epochs"] != cfg.train.epochs:
        words += ["--epochs", f"{advice['epochs']:g}"]
    return shlex.join(words)
