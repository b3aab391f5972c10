"""Calibration of classifier probabilities: expected calibration error, reliability bins and
temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks").

Fine-tuned networks are usually overconfident: a "0.99" is right far less than 99% of the time.
One temperature T, fitted on validation, divides the logits; it never changes the predicted
class (so accuracy and F1 stay put), only how sure the probabilities claim to be. Only
probabilities reach this module, and log(p) differs from the logits by a per-row constant,
which softmax ignores: softmax(log p / T) is exactly the temperature-scaled prediction.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

N_BINS = 15  # equal-width confidence bins, as in Guo et al.
EPS = 1e-12


def reliability(probs: np.ndarray, label_ids: np.ndarray, n_bins: int = N_BINS) -> tuple[float, list[dict]]:
    """(ECE, bins): top-label confidence vs accuracy in equal-width bins over [0, 1].
    ECE = sum over bins of (count / n) * |accuracy - mean confidence|; empty bins are left out."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == label_ids
    # bin i holds (i/n_bins, (i+1)/n_bins]; confidence 0 can't happen for a top label
    which = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece, bins = 0.0, []
    for i in range(n_bins):
        inside = which == i
        count = int(inside.sum())
        if not count:
            continue
        conf, acc = float(confidence[inside].mean()), float(correct[inside].mean())
        ece += count / len(probs) * abs(acc - conf)
        bins.append({"lower": round(i / n_bins, 4), "upper": round((i + 1) / n_bins, 4),
                     "confidence": round(conf, 6), "accuracy": round(acc, 6), "count": count})
    return float(ece), bins


def apply_temperature(probs: np.ndarray, temperature: Optional[float]) -> np.ndarray:
    """softmax(log p / T), same dtype; T None or 1 leaves the probabilities as they are."""
    if temperature is None or temperature == 1.0 or not len(probs):
        return probs
    z = np.log(np.clip(probs.astype(np.float64), EPS, 1.0)) / temperature  # (n, classes)
    z -= z.max(axis=1, keepdims=True)
    out = np.exp(z)
    return (out / out.sum(axis=1, keepdims=True)).astype(probs.dtype)


def fit_temperature(probs: np.ndarray, label_ids: np.ndarray) -> float:
    """The T > 0 minimising the negative log-likelihood of `label_ids` (searched on log T, so the
    problem is one-dimensional and bounded: T in [0.05, 20])."""
    from scipy.optimize import minimize_scalar

    logp = np.log(np.clip(probs.astype(np.float64), EPS, 1.0))
    rows = np.arange(len(label_ids))

    def nll(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        return float(-(z[rows, label_ids] - np.log(np.exp(z).sum(axis=1))).mean())

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return round(float(np.exp(result.x)), 6)


def calibration_report(probs: np.ndarray, label_ids: np.ndarray, fit_on: Optional[tuple] = None
                       ) -> tuple[dict, np.ndarray, Optional[float]]:
    """(report, probabilities to keep, temperature). fit_on=(val_probs, val_label_ids): fit T there
    (never on the split being reported) and report ECE before and after it on `probs`."""
    ece, bins = reliability(probs, label_ids)
    if fit_on is None:
        return {"ece": round(ece, 6), "bins": bins, "temperature": None, "ece_before": None}, probs, None
    temperature = fit_temperature(*fit_on)
    scaled = apply_temperature(probs, temperature)
    ece_after, bins_after = reliability(scaled, label_ids)
    report = {"ece": round(ece_after, 6), "bins": bins_after, "temperature": temperature,
              "ece_before": round(ece, 6), "bins_before": bins}
    return report, scaled, temperature
