"""Bootstrap confidence intervals for held-out metrics.

A test score from a few hundred examples is itself an estimate; the interval says how far it
could move on another sample of the same size. Percentile bootstrap: resample the evaluation
unit (an example; a sentence for NER, since its entities are not independent) with replacement,
re-score, and take the (1 - level) / 2 and (1 + level) / 2 quantiles.

Scorers precompute everything that does not depend on the resample (per-example correctness,
confusion-matrix codes, per-sentence entity counts), so 1000 resamples of 10k examples take a
fraction of a second.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

Scorer = Callable[[np.ndarray], dict]  # resampled indices (n,) -> {metric: value}


def bootstrap_ci(score: Scorer, n: int, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> dict:
    """{metric: [low, high]}: percentile intervals of `score` over `n_boot` resamples of range(n)."""
    if n == 0 or n_boot <= 0:
        return {}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        for metric, value in score(rng.integers(0, n, size=n)).items():
            draws.setdefault(metric, []).append(value)
    tails = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    return {metric: [round(float(v), 6) for v in np.percentile(values, tails)] for metric, values in draws.items()}


# ---------------------------------------------------------------- classification (unit: example)

def classification_scorer(label_ids: np.ndarray, pred: np.ndarray, n_classes: int) -> Scorer:
    """Accuracy and macro-F1 (over all classes, 0 for a class never seen nor predicted, as
    sklearn's f1_score(labels=all, zero_division=0)) from a confusion matrix per resample."""
    label_ids, pred = np.asarray(label_ids, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    correct = (label_ids == pred).astype(np.float64)
    codes = label_ids * n_classes + pred  # cell of the (true, predicted) confusion matrix

    def score(idx: np.ndarray) -> dict:
        cm = np.bincount(codes[idx], minlength=n_classes * n_classes).reshape(n_classes, n_classes)
        return {"accuracy": correct[idx].mean(), "macro_f1": macro_f1(cm)}

    return score


def macro_f1(cm: np.ndarray) -> float:
    """cm: (true, predicted) counts. F1 = 2 tp / (2 tp + fp + fn) per class, then the mean."""
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(axis=0) + cm.sum(axis=1)  # = 2 tp + fp + fn
    return float(np.mean(np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)))


def classification_ci(probs: np.ndarray, label_ids: np.ndarray, n_classes: int, n_boot: int,
                      level: float = 0.95, seed: int = 0) -> dict:
    score = classification_scorer(label_ids, probs.argmax(axis=1), n_classes)
    return described(bootstrap_ci(score, len(label_ids), n_boot, level, seed), level, n_boot, "example")


# ---------------------------------------------------------------- NER (unit: sentence)

def sentence_counts(gold: list[list[str]], pred: list[list[str]], scheme: str) -> np.ndarray:
    """(sentences, 3): true-positive, predicted and gold entity counts, matched the way seqeval's
    entity-level metrics match them (exact type and span; strict IOBES for BIOES)."""
    gold_sets, pred_sets = _entity_sets(gold, scheme), _entity_sets(pred, scheme)
    return np.array([[len(g & p), len(p), len(g)] for g, p in zip(gold_sets, pred_sets)],
                    dtype=np.int64).reshape(-1, 3)


def _entity_sets(sequences: list[list[str]], scheme: str) -> list[set]:
    if scheme == "BIOES":
        from seqeval.scheme import IOBES, Entities

        return [{e.to_tuple()[1:] for e in sent} for sent in Entities([list(s) for s in sequences], IOBES).entities]
    from seqeval.metrics.sequence_labeling import get_entities

    return [set(get_entities(list(s))) for s in sequences]


def ner_scorer(counts: np.ndarray) -> Scorer:
    """Micro precision / recall / F1 from the summed per-sentence counts of a resample."""

    def score(idx: np.ndarray) -> dict:
        return micro_prf(counts[idx].sum(axis=0))

    return score


def micro_prf(total: np.ndarray) -> dict:
    tp, n_pred, n_gold = (float(x) for x in total)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": f1, "precision": precision, "recall": recall}


def ner_ci(gold: list[list[str]], pred: list[list[str]], scheme: str, n_boot: int, level: float = 0.95,
           seed: int = 0) -> dict:
    counts = sentence_counts(gold, pred, scheme)
    return described(bootstrap_ci(ner_scorer(counts), len(counts), n_boot, level, seed), level, n_boot, "sentence")


def described(ci: dict, level: float, n_boot: int, unit: str) -> dict:
    return {**ci, "level": level, "n_boot": n_boot, "unit": unit} if ci else {}
