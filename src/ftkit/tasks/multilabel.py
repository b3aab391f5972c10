"""What text and image multi-label tasks share (a set of labels per example): one sigmoid per
label, binary cross-entropy with optional per-label positive weights, metrics at per-label
thresholds tuned on validation, bootstrap intervals, the predictions table and what a predictor
returns. The tasks themselves (text-multilabel, image-multilabel) live beside their
single-label siblings, whose reading, models and inputs they reuse.
"""
from __future__ import annotations

from typing import ClassVar, Optional

import numpy as np

from ftkit.data.label_sets import joined, multi_hot
from ftkit.evaluation.multilabel_metrics import (LabelScores, default_thresholds, multilabel_ci, multilabel_metrics,
                                                 tune_thresholds)
from ftkit.lazy import torch
from ftkit.tasks.base import Capabilities

# One sigmoid per label: no softmax to calibrate with a temperature and no single class to oversample.
# feature_probe stays off: model ranking's scores (LogME, kNN and probe accuracy) score one class per
# example, not label sets (the doctor's label-noise probe has its own multi-label path).
MULTILABEL = Capabilities(probabilities=True, thresholds=True)
METRICS = ("micro_f1", "macro_f1", "subset_accuracy", "mean_ap", "loss")
MAX_POS_WEIGHT = 100.0  # a label seen once in 10k rows must not swamp the loss



def set_targets(data, label_sets, labels: list[str]):
    """An encoded split (encoded without labels) given (n, labels) 0/1 targets from each example's
    label set (None: unlabelled) — the one step text and image multi-label add to their encoders."""
    data.labels = None if label_sets is None else multi_hot(label_sets, labels)
    data.n_classes = len(labels)
    return data


def pos_weights(targets: np.ndarray) -> torch.Tensor:
    """(labels,) negatives / positives of each label in train (BCEWithLogits' pos_weight)."""
    pos = targets.sum(axis=0)
    neg = len(targets) - pos
    return torch.tensor(np.clip(neg / np.maximum(pos, 1), 1.0 / MAX_POS_WEIGHT, MAX_POS_WEIGHT), dtype=torch.float32)


class MultiLabelEvaluation:
    """Mixed in before a single-label task class (its reading and model are kept; its softmax
    evaluation is replaced). Encoded splits carry `labels` as (n, labels) float 0/1 targets."""

    default_metric: ClassVar[str] = "micro_f1"
    metrics: ClassVar[tuple[str, ...]] = METRICS
    # Temperature scaling and per-group slices are softmax-classifier features: not offered here.
    calibration = None
    group_metrics = None

    def criterion(self, cfg, train):
        """(logits (batch, labels), targets (batch, labels)) -> mean BCE; train.class_weights=auto
        weighs each label's positives by its negatives/positives ratio in train; label smoothing
        pulls targets toward 0.5."""
        import torch.nn.functional as F

        weight = pos_weights(train.labels) if cfg.train.class_weights == "auto" else None
        smoothing = cfg.train.label_smoothing

        def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            targets = targets.float() * (1 - smoothing) + 0.5 * smoothing
            w = None if weight is None else weight.to(logits.device)
            return F.binary_cross_entropy_with_logits(logits.float(), targets, pos_weight=w)

        return loss

    def scores_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits.float())

    def metrics_from_probs(self, probs: np.ndarray, targets: np.ndarray, labels: list[str]) -> dict:
        return multilabel_metrics(LabelScores(probs, default_thresholds(len(labels))), targets, labels)

    def scored(self, probs: np.ndarray, targets: Optional[np.ndarray], labels: list[str]) -> tuple[dict, LabelScores]:
        """evaluate()'s result at the default thresholds (training's validations select by these)."""
        scores = LabelScores(probs, default_thresholds(len(labels)))
        return (multilabel_metrics(scores, targets, labels) if targets is not None else {}), scores

    def tune_thresholds(self, data, scores: Optional[LabelScores], labels: list[str]) -> np.ndarray:
        """Per-label thresholds maximising each label's F1 on validation (0.5 without it)."""
        return tune_thresholds(None if scores is None else scores.probs, None if data is None else data.labels,
                               len(labels))

    def at_thresholds(self, data, scores: LabelScores, labels: list[str], thresholds: np.ndarray):
        """-> (metrics, scores) of a split re-decided at `thresholds`."""
        scores = LabelScores(scores.probs, np.asarray(thresholds, dtype=np.float32))
        return multilabel_metrics(scores, data.labels, labels), scores

    def confidence_intervals(self, data, scores: LabelScores, labels: list[str], n_boot: int, level: float,
                             seed: int) -> dict:
        """Bootstrap intervals of micro-F1, macro-F1 and subset accuracy, resampling examples. Plain
        (n, labels) scores (`ftkit advise` times this on random ones) are decided at 0.5."""
        if not isinstance(scores, LabelScores):
            scores = LabelScores(np.asarray(scores), default_thresholds(len(labels)))
        return multilabel_ci(scores, data.labels, n_boot, level, seed)


def set_prediction_frame(rows, key: str, inputs, true_sets, scores: LabelScores, labels: list[str]):
    """One row per example: input, the true labels when known and the predicted ones (joined by
    "|"), and every label's probability (the predictions.csv of multi-label tasks)."""
    import pandas as pd

    frame = pd.DataFrame({"row": rows, key: inputs})
    if true_sets is not None:
        frame["labels"] = [joined(s) for s in true_sets]
    decided = scores.decisions()
    frame["predicted"] = [joined(tuple(labels[j] for j in np.flatnonzero(d))) for d in decided]
    for j, name in enumerate(labels):
        frame[f"prob_{name}"] = scores.probs[:, j]
    return frame


def predictions(scores: LabelScores, labels: list[str]) -> list[dict]:
    """What predictors return per input: the labels at or above their thresholds (highest first)
    with their scores, and every label's probability."""
    out = []
    for p, chosen in zip(scores.probs, scores.decisions()):
        picked = sorted(np.flatnonzero(chosen), key=lambda j: -p[j])
        out.append({"labels": [labels[j] for j in picked], "scores": {labels[j]: float(p[j]) for j in picked},
                    "probabilities": {name: float(v) for name, v in zip(labels, p)}})
    return out


def saved_thresholds(meta: dict) -> np.ndarray:
    """The per-label thresholds a run saved in ftkit.json (0.5 each for a model saved without)."""
    saved = meta.get("thresholds")
    return np.asarray(saved, dtype=np.float32) if saved else default_thresholds(len(meta["labels"]))
