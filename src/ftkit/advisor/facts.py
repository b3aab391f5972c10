"""Facts `ftkit advise` reasons with: the data as fit would split it, the model, and how well the
pretrained features already separate the classes (transferability, from `ftkit.selection`)."""
from __future__ import annotations

import logging

import numpy as np

from ftkit.data.targets import target_summary
from ftkit.selection.rank import add_ranks, order, score_candidate

log = logging.getLogger(__name__)


def data_facts(run: dict) -> dict:
    """Sizes per split, classes and balance, and input sizes (tokens, or image pixels)."""
    splits, data = run["splits"], run["data"]
    facts = {"n": {name: len(part) for name, part in data.items()}, "labels": list(splits.labels),
             "n_classes": len(splits.labels)}
    train_labels = getattr(data["train"], "labels", None)
    if splits.numeric_target:  # regression: the target's spread, no classes to count
        facts["target"] = target_summary(train_labels)
    elif isinstance(train_labels, np.ndarray) and train_labels.ndim == 1:  # one class id per example
        counts = np.bincount(np.asarray(train_labels), minlength=len(splits.labels))
        facts["class_counts"] = {label: int(c) for label, c in zip(splits.labels, counts)}
        facts["min_class_count"] = int(counts.min())
        facts["imbalance_ratio"] = round(float(counts.max() / max(counts.min(), 1)), 2)
    clips = {name: part.clips for name, part in data.items() if hasattr(part, "clips")}
    if clips:  # speech: how much audio
        rate = data["train"].proc.rate
        facts["audio_seconds"] = {name: round(sum(len(c) for c in cs) / rate, 1) for name, cs in clips.items()}
    prep = getattr(data["train"], "prep", None)
    if prep is not None:
        facts["image_size"] = prep.size
    else:
        facts["lengths"] = {name: _length_stats(part.lengths, run["cfg"].data.max_length)
                            for name, part in data.items()}
    if run["train_probe"] is not None:
        facts["train_probe_units"] = float(run["train_probe"].lengths.sum())
    facts["units"] = {name: float(part.lengths.sum()) for name, part in data.items()}
    return facts


def _length_stats(lengths: np.ndarray, max_length: int) -> dict:
    """Tokens per input; `truncated` is the share cut at data.max_length."""
    if len(lengths) == 0:
        return {}
    return {"mean": round(float(lengths.mean()), 1), "p50": int(np.percentile(lengths, 50)),
            "p95": int(np.percentile(lengths, 95)), "max": int(lengths.max()),
            "truncated": round(float((lengths >= max_length).mean()), 4)}


def model_facts(run: dict) -> dict:
    """Parameters (trainable under this strategy), max input length / image size."""
    model, params, cfg = run["model"], run["params"], run["cfg"]
    config = getattr(model, "config", None)
    facts = {"name": cfg.model.name, "source": run["source"].describe(), "total_params": params.total,
             "trainable_params": params.trainable,
             "size_mb": round(sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20, 1)}
    limit = getattr(config, "max_position_embeddings", None)
    if limit:
        facts["max_position_embeddings"] = int(limit)
        facts["max_length"] = min(int(limit), cfg.data.max_length)
    prep = getattr(run["data"]["train"], "prep", None)
    if prep is not None:
        facts["image_size"] = prep.size
    return facts


def transferability(cfg, models: list[str]) -> dict:
    """Per model: LogME, kNN and linear-probe accuracy of its frozen features, ranked as
    `ftkit rank` ranks them (mean of the per-score ranks), best first; `random:NAME` works too."""
    rows = order(add_ranks([score_candidate(cfg, name) for name in models]))
    return {"available": True, "models": [
        {"model": r["candidate"], **{k: _plain(v) for k, v in r["scores"].items()}, "rank": r["rank"],
         "mean_rank": r["mean_rank"], "info": {"n": r["n"], "dim": r["dim"], "cache": r["feature_cache"],
                                               "seconds": r["seconds"]}} for r in rows]}


def _plain(value):
    return float(value) if isinstance(value, (np.floating, np.integer)) else value


def _jsonable(info) -> dict:
    if not isinstance(info, dict):
        return {}
    return {k: _plain(v) for k, v in info.items() if isinstance(v, (str, int, float, bool, type(None),
                                                                       np.floating, np.integer))}
