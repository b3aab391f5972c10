"""Classification metrics from predicted probabilities."""
from __future__ import annotations

import numpy as np

# Metric name -> True when higher is better; used for model selection and early stopping.
DIRECTION = {"accuracy": True, "macro_f1": True, "f1": True, "precision": True, "recall": True,
             "loss": False, "wer": False, "cer": False,
             "micro_f1": True, "subset_accuracy": True, "mean_ap": True,  # multi-label
             "rmse": False, "mae": False, "r2": True, "spearman": True, "pearson": True}  # regression
# Metrics in the target's own units (regression): a train/validation gap is judged relative to the
# validation value, not in points of a 0..1 score.
UNITS = frozenset({"rmse", "mae"})
# Scalar metrics worth a line wherever runs are summed up (logs, tables), in this order.
HEADLINE = ("accuracy", "micro_f1", "macro_f1", "subset_accuracy", "mean_ap", "f1", "precision", "recall",
            "wer", "cer", "rmse", "mae", "r2", "spearman", "pearson", "loss")


def classification_metrics(probs: np.ndarray, labels: np.ndarray, names: list[str]) -> dict:
    """probs: (n, classes) probabilities; labels: (n,) class ids; names: class names by id."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    pred = probs.argmax(axis=1)
    ids = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, pred, labels=ids, zero_division=0)
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)
    return {
        "accuracy": float(accuracy_score(labels, pred)),
        "macro_f1": float(f1_score(labels, pred, labels=ids, average="macro", zero_division=0)),
        "loss": float(-np.log(picked).mean()),
        "n": int(len(labels)),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]),
                   "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(names)
        },
        "labels": list(names),
        "confusion_matrix": confusion_matrix(labels, pred, labels=ids).tolist(),
    }


def better(metric: str, new: float, old: float | None) -> bool:
    if old is None:
        return True
    return new > old if DIRECTION.get(metric, True) else new < old
