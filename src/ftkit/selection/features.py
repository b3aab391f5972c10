"""Frozen features of a candidate model: what its task head would receive, through the on-disk
feature cache (training/features.py), so ranking the same candidates again costs no forward pass.

One vector per example only: token classification heads take one vector per token, so they are
refused here (``NotCacheable``) rather than silently pooled.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from ftkit.config import FitConfig
from ftkit.errors import ConfigError
from ftkit.data.frozen_features import frozen_features

log = logging.getLogger(__name__)

RANDOM = "random:"  # candidate prefix: the named architecture with random weights (a floor)


def candidate_config(cfg: FitConfig, candidate: str) -> FitConfig:
    """The config for one candidate: `random:NAME` is NAME with model.init=random."""
    name, init = (candidate[len(RANDOM):], "random") if candidate.startswith(RANDOM) else (candidate, "pretrained")
    if not name:
        raise ConfigError(f"--models: {candidate!r} names no model after {RANDOM!r}")
    model = cfg.model.model_copy(update={"name": name, "init": init})
    return cfg.model_copy(update={"model": model}, deep=True)


def candidate_features(cfg: FitConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """(n, dim) frozen features and (n,) label ids of the TRAINING rows (after the validation/test
    hold-out, so rows a fine-tune is judged on never inform a score), and an info dict:
    {"seconds", "cache", "dim", "n", "model", "init", "labels", "extract_seconds", "file"}.

    cfg.model.init == "random" gives the same architecture with random weights (a floor).
    """
    from ftkit.tasks import get_task, tasks_with

    tick = time.perf_counter()
    task = get_task(cfg.task)
    if not task.capabilities.feature_probe:
        raise ConfigError(f"--task {cfg.task}: ranking needs one feature vector and one class per example "
                          f"({', '.join(tasks_with('feature_probe'))}); a {cfg.task} head takes one vector per "
                          "token, or a set of labels")
    splits = task.prepare_data(cfg)
    from ftkit.training.features import NotCacheable

    try:
        feats, labels, records = frozen_features(cfg, task, splits.labels, [("train", splits.train)])
    except NotCacheable as why:
        raise ConfigError(f"--models {cfg.model.name}: no frozen features to score ({why})") from None
    record = records[0]
    info = {"seconds": round(time.perf_counter() - tick, 3), "cache": record["cache"], "dim": int(feats[0].shape[1]),
            "n": int(feats[0].shape[0]), "model": cfg.model.name, "init": cfg.model.init, "labels": splits.labels,
            "extract_seconds": record["seconds"], "file": record["file"]}
    return feats[0], labels[0], info
