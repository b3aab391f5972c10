"""Seconds for a whole `fit` from a strategy's profile (profile.py): the loop's arithmetic.

    total = setup                      measured: data, doctor, model load, strategy, encode
          + probe phase                linear-probe / LP-FT: feature pass over train + validation,
                                       then the head's steps on cached features
          + training steps             steps x (grad_accum x batch seconds + optimizer seconds)
                                       + each batch shape's first-time cost, once
          + validation passes          each epoch (or eval_every): validation + train-probe rows,
                                       in the run's precision, + a best-weights save
          + checkpoints                each epoch end and every checkpoint_every steps
          + final evaluation           validation + test in fp32, bootstrap CIs, model save

Evaluation cost is per input unit (token for text, image for images), so splits of different
lengths cost what their tokens cost. Early stopping can only make a run shorter: the estimate
is for the configured epochs. `train_seconds` follows summary.json's meaning (linear probe:
feature pass + head; LP-FT: its full phase only).
"""
from __future__ import annotations

import math
from typing import Optional

MAX_EPOCHS = 100  # "fits N epochs" above this says nothing useful (a linear probe's epochs are ~free)


def estimate_fit(profile: dict, epochs: Optional[float] = None, n_train: Optional[int] = None) -> dict:
    """Estimated seconds of `fit` with this strategy, for `epochs` passes over `n_train` rows
    (default: the configured ones), by part; `total_seconds` is what summary.json's
    timing.total_seconds should read."""
    loop, facts = profile["loop"], profile["data"]
    epochs = float(epochs or loop["epochs"])
    n = int(n_train or facts["n"]["train"])
    steps = _steps(n, epochs, loop)
    parts = {"setup_seconds": profile["setup_seconds"], "probe_seconds": 0.0, "train_seconds": 0.0,
             "eval_seconds": 0.0, "save_seconds": 0.0}
    probe = profile.get("probe")
    if probe and probe["cacheable"]:
        head_epochs = float(loop["probe_epochs"] or epochs)
        phase = _feature_seconds(profile, n) + _steps(n, head_epochs, loop) * probe["head_step_seconds"]
        parts["probe_seconds" if loop["then_full"] else "train_seconds"] = phase
    if "steps" in profile:
        s = profile["steps"]
        batches = min(steps * loop["grad_accum"], math.ceil(epochs * math.ceil(n / loop["batch_size"])))
        parts["train_seconds"] += (batches * s["batch_seconds"] + steps * s["optimizer_seconds"]
                                   + s["shapes"] * s["new_shape_seconds"])
        # each epoch (a fractional last one too), or every eval_every steps and the last step
        validations = math.ceil(epochs) if loop["eval_every"] is None else math.ceil(steps / loop["eval_every"])
        calls = 2 if "validation" in facts["units"] else 0  # validation + the train-probe rows
        parts["eval_seconds"] = validations * (_validation_units(profile, n) * _unit_cost(profile, profile["precision"])
                                               + calls * _call_cost(profile, profile["precision"]))
        checkpoints = math.floor(epochs) + steps // loop["checkpoint_every"]
        parts["save_seconds"] = (validations * profile["saves"]["weights_seconds"]
                                 + checkpoints * profile["saves"]["checkpoint_seconds"])
    held = facts["units"].get("validation", 0.0) + facts["units"].get("test", 0.0)
    calls = sum(1 for k in ("validation", "test") if k in facts["units"])
    parts["final_seconds"] = (held * _unit_cost(profile, "fp32") + calls * _call_cost(profile, "fp32")
                              + profile["assess_seconds"]
                              + profile["saves"]["weights_seconds"])
    out = {"epochs": epochs, "n_train": n, "steps": steps, **{k: round(v, 2) for k, v in parts.items()}}
    out["total_seconds"] = round(sum(parts.values()), 2)
    out["seconds_per_step"] = round(profile["steps"]["step_seconds"], 5) if "steps" in profile else None
    out["eval_seconds_per_example"] = {p: round(c * _mean_units(facts), 6)
                                       for p, c in profile["eval"]["seconds_per_unit"].items()}
    return out


def seconds_per_epoch(profile: dict, n_train: Optional[int] = None) -> float:
    """Marginal seconds of one more epoch (steps, validation, checkpoint): what fewer epochs save."""
    one, two = estimate_fit(profile, 1, n_train), estimate_fit(profile, 2, n_train)
    return max(two["total_seconds"] - one["total_seconds"], 1e-6)


def epochs_within(profile: dict, budget: float, n_train: Optional[int] = None) -> float:
    """The most epochs (whole, or one decimal below one; at most MAX_EPOCHS) whose estimated fit
    fits the budget; 0: none."""
    per_epoch = seconds_per_epoch(profile, n_train)
    fixed = estimate_fit(profile, 1, n_train)["total_seconds"] - per_epoch
    epochs = min((budget - fixed) / per_epoch, MAX_EPOCHS)
    return float(math.floor(epochs)) if epochs >= 1 else max(0.0, math.floor(epochs * 10) / 10)


def trials_within(total_seconds: float, budget: Optional[float]) -> Optional[int]:
    """How many such fits (tuning trials) the budget holds."""
    return None if budget is None else int(budget // max(total_seconds, 1e-9))


def _steps(n: int, epochs: float, loop: dict) -> int:
    per_epoch = math.ceil(math.ceil(n / loop["batch_size"]) / loop["grad_accum"])
    return max(1, math.ceil(epochs * per_epoch))


def _feature_seconds(profile: dict, n: int) -> float:
    units = _train_units(profile, n) + profile["data"]["units"].get("validation", 0.0)
    return units * profile["probe"]["feature_seconds_per_unit"] + profile["probe"]["hash_seconds"]


def _validation_units(profile: dict, n: int) -> float:
    """Validation rows + the train-probe rows (train_eval_size) scored beside them."""
    facts = profile["data"]
    if "validation" not in facts["units"]:
        return 0.0
    probe_rows = min(n, profile["loop"]["train_eval_size"])
    return facts["units"]["validation"] + probe_rows * _train_units(profile, n) / max(n, 1)


def _train_units(profile: dict, n: int) -> float:
    facts = profile["data"]
    return facts["units"]["train"] * n / max(facts["n"]["train"], 1)


def _unit_cost(profile: dict, precision: str) -> float:
    costs = profile["eval"]["seconds_per_unit"]
    return costs.get(precision, costs.get("fp32", 0.0))


def _call_cost(profile: dict, precision: str) -> float:
    costs = profile["eval"]["seconds_per_call"]
    return costs.get(precision, costs.get("fp32", 0.0))


def _mean_units(facts: dict) -> float:
    split = "validation" if "validation" in facts["units"] else "train"
    return facts["units"][split] / max(facts["n"][split], 1)
