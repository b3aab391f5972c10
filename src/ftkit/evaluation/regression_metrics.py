"""Regression metrics (a number per example): RMSE, MAE, R², Spearman and Pearson correlation, each
with a percentile-bootstrap interval resampling examples; and the predict-the-mean baseline.

Point values come from scikit-learn and SciPy; the bootstrap re-scores resamples with the same
formulas on numpy arrays (a constant resample has no correlation: NaN, left out of the interval).
"""
from __future__ import annotations

import warnings

import numpy as np

from ftkit.evaluation.bootstrap import bootstrap_ci, described

METRICS = ("rmse", "mae", "r2", "spearman", "pearson", "loss")


def regression_metrics(pred: np.ndarray, target: np.ndarray, scale: float = 1.0) -> dict:
    """pred, target: (n,) in the target's own units; `scale`: the training target's std, so `loss`
    is the MSE of standardised values (what training minimises) and comparable across datasets."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if len(target) == 0:
        return {"n": 0}
    mse = float(mean_squared_error(target, pred))
    constant = np.ptp(target) == 0 or np.ptp(pred) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant input: correlation undefined, reported as null
        spearman = None if constant else float(spearmanr(pred, target).statistic)
        pearson = None if constant else float(pearsonr(pred, target).statistic)
    return {"rmse": float(np.sqrt(mse)), "mae": float(mean_absolute_error(target, pred)),
            "r2": float(r2_score(target, pred)) if len(target) > 1 else None,
            "spearman": spearman, "pearson": pearson, "loss": mse / scale ** 2, "n": int(len(target))}


def mean_baseline(train_mean: float, target: np.ndarray, scale: float = 1.0) -> dict:
    """What predicting the training mean for every example scores (R² ~ 0, no correlation)."""
    keys = ("rmse", "mae", "r2", "loss")
    got = regression_metrics(np.full(len(target), train_mean), target, scale)
    return {"prediction": float(train_mean), **{k: got[k] for k in keys if k in got}}


def regression_scorer(pred: np.ndarray, target: np.ndarray):
    from scipy.stats import rankdata

    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    err = pred - target

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        a, b = a - a.mean(), b - b.mean()
        denom = np.sqrt((a * a).sum() * (b * b).sum())
        return float((a * b).sum() / denom) if denom > 0 else float("nan")

    def score(idx: np.ndarray) -> dict:
        t, p, e = target[idx], pred[idx], err[idx]
        ss_tot = ((t - t.mean()) ** 2).sum()
        return {"rmse": float(np.sqrt((e * e).mean())), "mae": float(np.abs(e).mean()),
                "r2": float(1 - (e * e).sum() / ss_tot) if ss_tot > 0 else float("nan"),
                "pearson": corr(p, t), "spearman": corr(rankdata(p), rankdata(t))}

    return score


def regression_ci(pred: np.ndarray, target: np.ndarray, n_boot: int, level: float = 0.95, seed: int = 0) -> dict:
    """{metric: [low, high]} for rmse, mae, r2, spearman and pearson."""
    ci = bootstrap_ci(regression_scorer(pred, target), len(target), n_boot, level, seed)
    return described({k: v for k, v in ci.items() if all(np.isfinite(v))}, level, n_boot, "example")
