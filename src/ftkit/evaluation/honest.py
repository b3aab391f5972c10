"""Honest evaluation of the held-out splits, called by `fit` after the final evaluation:
bootstrap confidence intervals (every task), calibration with optional temperature scaling and
metrics per group (classification tasks).

Tasks supply the parts for their own unit of evaluation as methods: `confidence_intervals`
(all tasks), `calibration` and `group_metrics` (tasks declaring those capabilities: one
probability row per example). A task without one refuses the setting that needs it, before
anything is written.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ftkit.config import FitConfig
from ftkit.errors import ConfigError
from ftkit.evaluation.slices import read_groups


def check_eval(task, cfg: FitConfig, splits) -> Optional[list[str]]:
    """Refuse eval settings the task or data can't honour; -> the --group-column value of each
    test example (None without the flag). Runs before the run folder is written."""
    if cfg.eval.calibrate and not task.capabilities.calibration:
        raise ConfigError(f"--set eval.calibrate=true: temperature scaling is for classification tasks, "
                          f"not {task.name}")
    if cfg.eval.calibrate and splits.validation is None:
        raise ConfigError("--set eval.calibrate=true fits the temperature on validation data: pass "
                          "--validation PATH or keep data.validation_size above 0")
    column = cfg.data.group_column
    if column is None:
        return None
    if not task.capabilities.group_metrics:
        raise ConfigError(f"--group-column {column!r}: per-group metrics are not supported for {task.name}")
    if splits.test is None:
        raise ConfigError(f"--group-column {column!r}: groups are compared on the test split; pass --test PATH "
                          "or keep data.test_size above 0")
    return read_groups(splits.test, column)


def assess(task, cfg: FitConfig, data: dict, probs: dict, metrics: dict, labels: list[str],
           groups: Optional[list[str]]) -> tuple[Optional[np.ndarray], Optional[float]]:
    """Adds `ci`, `calibration` and `groups` to metrics[split] in place.
    -> (test probabilities to save: temperature-scaled with eval.calibrate, the temperature)."""
    e = cfg.eval
    if e.bootstrap:
        for name in probs:
            ci = task.confidence_intervals(data[name], probs[name], labels, e.bootstrap, e.level, cfg.seed)
            if ci:
                metrics[name]["ci"] = ci
    test, temperature = probs.get("test"), None
    if test is None:
        return None, None
    if task.capabilities.calibration:
        fit_on = (data["validation"], probs["validation"]) if e.calibrate else None
        metrics["test"]["calibration"], test, temperature = task.calibration(data["test"], test, fit_on)
    if groups is not None:
        metrics["test"]["groups"] = task.group_metrics(data["test"], probs["test"], groups,
                                                       cfg.data.group_column, e.min_group_size)
    return test, temperature
