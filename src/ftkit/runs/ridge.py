"""The probe baseline of a numeric target (`ftkit fit --label-type number --baseline probe`): a
ridge regression on the frozen pretrained body's cached features, fitted in closed form.

Same data, splits, seed and model as the fine-tuned run (the config `baselines.derive` made);
nothing is trained through the loop. The steps, in RUN_DIR/baselines/probe/:

    prepare (fit's steps 1-3)  ->  features of every split (training/features.py cache, fp32)
      -> RidgeCV on train (target standardised as the loop's, alpha by leave-one-out)
      -> predictions mapped back to the target's units, scored with the task's own metrics + CIs
      -> predictions.csv (test, as a fit writes it), summary.json (its `method` block names ridge
         and the chosen alpha)

The test split's features are computed like the others' but only ever predicted, never fitted on.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ftkit.config import FitConfig, to_dict
from ftkit.errors import StrategyError
from ftkit.evaluation.honest import assess
from ftkit.io import atomic_path
from ftkit.locks import folder_lock
from ftkit.runs.fit import FINAL_EVAL_PRECISION, Prepared, prepare
from ftkit.runs.rundir import RunDir
from ftkit.strategies.groups import head_modules
from ftkit.training.features import NotCacheable, body_fingerprint, cached_features
from ftkit.training.ridge import RidgeProbe, fit_ridge

log = logging.getLogger(__name__)


def ridge_run(cfg: FitConfig, *, overwrite: bool = False, quiet: bool = False,
              command: list[str] | None = None) -> Path:
    """Fit and score the ridge probe into cfg.out; a finished one is reused by the caller. Cheap
    (seconds on cached features), so a killed one starts over rather than resuming."""
    started = time.perf_counter()
    with folder_lock(cfg.out):
        run = RunDir(cfg.out)
        run.check(False, overwrite)
        p = prepare(cfg, announce=not quiet)
        assert p.task.capabilities.ridge_probe, f"{p.task.name} has no ridge probe"
        run.start(to_dict(p.cfg.model_copy(update={"out": str(run.path)})), command or [], p.splits.record, overwrite)
        features, record = split_features(p)
        tick = time.perf_counter()
        ridge = fit_ridge(features["train"], p.task.standardised_targets(p.model, p.data["train"]))
        fit_seconds = time.perf_counter() - tick
        metrics, values = score(p, ridge, features)
        if "test" in values:  # the same columns as a fit's, so the two compare row by row
            with atomic_path(run.predictions) as tmp:
                p.task.prediction_frame(p.splits.test, values["test"], p.splits.labels).to_csv(tmp, index=False)
        summary = ridge_summary(p, ridge, metrics, record, fit_seconds)
        summary["timing"]["total_seconds"] = round(time.perf_counter() - started, 3)
        run.write_summary(summary)
    log.info("ridge probe (alpha %g): %s", ridge.alpha, ", ".join(
        f"{split} {p.metric} {m[p.metric]:.4g}" for split, m in metrics.items() if m.get(p.metric) is not None))
    return run.path


def split_features(p: Prepared) -> tuple[dict[str, np.ndarray], dict]:
    """(n, dim) inputs of the head for every split, from the feature cache (computed on a miss)."""
    try:
        heads = head_modules(p.model)
        if len(heads) != 1:
            raise NotCacheable(f"the head is several modules ({', '.join(heads)})")
        body = body_fingerprint(p.model, heads[0])
        features, splits = {}, {}
        for name, part in p.data.items():
            features[name], _, splits[name] = cached_features(p.model, heads[0], body, part, p.task.eval_batch(p.cfg),
                                                              FINAL_EVAL_PRECISION, name)
    except NotCacheable as why:
        raise StrategyError(f"--baseline probe: the ridge probe needs one feature vector per example ({why})") from None
    fitted = [s for name, s in splits.items() if name != "test"]  # test features are only predicted
    return features, {"cache": "hit" if all(s["cache"] == "hit" for s in splits.values()) else "miss",
                      "feature_seconds": round(sum(s["seconds"] for s in fitted), 3),
                      "dim": int(features["train"].shape[1]), "splits": splits}


def score(p: Prepared, ridge: RidgeProbe, features: dict) -> tuple[dict, dict]:
    """Metrics of every held-out split with the run's bootstrap CIs, and the predicted values
    (both in the target's units)."""
    metrics, values = {}, {}
    for name in ("validation", "test"):
        if name in p.data:
            predicted = ridge.predict(features[name])  # (n,) standardised
            metrics[name], values[name] = p.task.score_standardised(p.model, predicted, p.data[name])
    assess(p.task, p.cfg, p.data, values, metrics, p.splits.labels, None)  # adds metrics[split]["ci"]
    return metrics, values


def ridge_summary(p: Prepared, ridge: RidgeProbe, metrics: dict, record: dict, fit_seconds: float) -> dict:
    """summary.json in the fields a fit's summary shares with it (what baselines and readers use)."""
    best = metrics.get("validation", {}).get(p.metric)
    train_seconds = record["feature_seconds"] + fit_seconds  # what a fit's train_seconds counts for a probe
    return {
        "task": p.cfg.task, "model": p.cfg.model.name, "model_source": p.source.describe(), "init": p.cfg.model.init,
        "strategy": "ridge-probe", "labels": p.splits.labels, "metrics": metrics,
        "method": ridge.record(),
        "best": {"metric": p.metric, "value": best, "step": None, "epoch": None},
        "history": [],
        "timing": {"train_seconds": round(train_seconds, 3), "feature_seconds": record["feature_seconds"],
                   "fit_seconds": round(fit_seconds, 3), "steps": 0, "samples": len(p.data["train"])},
        "features": record, "seed": p.cfg.seed, "device": str(p.device), "precision": FINAL_EVAL_PRECISION,
        "threads": p.threads, "data": {name: len(part) for name, part in p.data.items()},
        "outputs": {"model": False, "test_scored": "test" in p.data},
    }
