"""Multi-label metrics: one sigmoid score per (example, label), a label predicted when its score
reaches that label's threshold.

micro_f1 pools every (example, label) decision; macro_f1 averages the labels' F1 (a label never
true nor predicted counts 0, as sklearn's zero_division=0); subset_accuracy is the share of
examples whose predicted set is exactly right; mean_ap averages each label's average precision
(threshold-free: it ranks examples by score). Thresholds are tuned per label on the validation
split to maximise that label's F1 (`tune_thresholds`) and saved with the model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ftkit.evaluation.bootstrap import Scorer, bootstrap_ci, described

DEFAULT_THRESHOLD = 0.5  # without a validation split nothing is tuned


@dataclass
class LabelScores:
    """What a multi-label task's evaluation hands on: (n, labels) sigmoid scores and the (labels,)
    thresholds its decisions use."""

    probs: np.ndarray
    thresholds: np.ndarray

    def decisions(self) -> np.ndarray:
        return self.probs >= self.thresholds[None, :]  # (n, labels) bool

    def __len__(self) -> int:
        return len(self.probs)


def default_thresholds(n_labels: int) -> np.ndarray:
    return np.full(n_labels, DEFAULT_THRESHOLD, dtype=np.float32)


def multilabel_metrics(scores: LabelScores, targets: np.ndarray, names: list[str]) -> dict:
    """targets: (n, labels) 0/1. -> the headline metrics, per-label precision/recall/F1/AP, BCE loss."""
    from sklearn.metrics import precision_recall_fscore_support

    y, pred = targets.astype(bool), scores.decisions()
    counts = _counts(y, pred)
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, average=None, zero_division=0)
    ap = _average_precision(scores.probs, y)
    p = np.clip(scores.probs.astype(np.float64), 1e-7, 1 - 1e-7)
    loss = -(y * np.log(p) + (~y) * np.log(1 - p)).mean() if len(y) else float("nan")
    return {**_headline(counts, y, pred), "mean_ap": float(np.nanmean(ap)) if np.isfinite(ap).any() else 0.0,
            "loss": float(loss), "n": int(len(y)),
            "per_label": {name: {"precision": float(precision[j]), "recall": float(recall[j]), "f1": float(f1[j]),
                                 "ap": None if np.isnan(ap[j]) else float(ap[j]), "support": int(support[j]),
                                 "threshold": round(float(scores.thresholds[j]), 4)}
                          for j, name in enumerate(names)},
            "labels": list(names), "thresholds": [round(float(t), 4) for t in scores.thresholds]}


def _counts(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(labels, 3): true positives, predicted and true counts of each label."""
    return np.stack([(y & pred).sum(axis=0), pred.sum(axis=0), y.sum(axis=0)], axis=1).astype(np.float64)


def _headline(counts: np.ndarray, y: np.ndarray, pred: np.ndarray) -> dict:
    tp, n_pred, n_true = counts[:, 0], counts[:, 1], counts[:, 2]
    denom = n_pred + n_true  # = 2 tp + fp + fn
    per_label = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    total = denom.sum()
    return {"micro_f1": float(2 * tp.sum() / total) if total else 0.0,
            "macro_f1": float(per_label.mean()) if len(per_label) else 0.0,
            "subset_accuracy": float((y == pred).all(axis=1).mean()) if len(y) else 0.0}


def _average_precision(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(labels,) sklearn average precision per label; nan for a label with no true example."""
    from sklearn.metrics import average_precision_score

    return np.array([average_precision_score(y[:, j], probs[:, j]) if y[:, j].any() else np.nan
                     for j in range(y.shape[1])])


def tune_thresholds(probs: Optional[np.ndarray], targets: Optional[np.ndarray], n_labels: int) -> np.ndarray:
    """(labels,) the threshold maximising each label's F1 on (validation) scores, placed midway
    between the two scores it separates; DEFAULT_THRESHOLD without data or without a true example."""
    out = default_thresholds(n_labels)
    if probs is None or targets is None or not len(probs):
        return out
    for j in range(n_labels):
        y = targets[:, j].astype(bool)
        if y.any():
            out[j] = _best_f1_cut(probs[:, j].astype(np.float64), y)
    return out


def _best_f1_cut(scores: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], y[order]
    tp = np.cumsum(t)  # predicting the top k+1 rows positive
    f1 = 2 * tp / (np.arange(1, len(s) + 1) + t.sum())
    distinct = np.r_[s[1:] < s[:-1], True]  # a cut can only fall between different scores
    f1 = np.where(distinct, f1, -1.0)
    k = int(np.argmax(f1))
    below = s[k + 1] if k + 1 < len(s) else max(s[k] - 1e-3, 0.0)
    return float(np.clip((s[k] + below) / 2, 1e-4, 1 - 1e-4))


def multilabel_scorer(scores: LabelScores, targets: np.ndarray) -> Scorer:
    """micro-F1, macro-F1 and subset accuracy of a resample from per-example counts."""
    y, pred = targets.astype(bool), scores.decisions()
    hits = (y & pred).astype(np.int64)  # (n, labels)
    pred_i, true_i = pred.astype(np.int64), y.astype(np.int64)
    exact = (y == pred).all(axis=1).astype(np.float64)

    def score(idx: np.ndarray) -> dict:
        tp, n_pred, n_true = hits[idx].sum(axis=0), pred_i[idx].sum(axis=0), true_i[idx].sum(axis=0)
        counts = np.stack([tp, n_pred, n_true], axis=1).astype(np.float64)
        head = _headline(counts, y[:0], pred[:0])
        return {"micro_f1": head["micro_f1"], "macro_f1": head["macro_f1"], "subset_accuracy": exact[idx].mean()}

    return score


def multilabel_ci(scores: LabelScores, targets: np.ndarray, n_boot: int, level: float = 0.95, seed: int = 0) -> dict:
    return described(bootstrap_ci(multilabel_scorer(scores, targets), len(targets), n_boot, level, seed),
                     level, n_boot, "example")
