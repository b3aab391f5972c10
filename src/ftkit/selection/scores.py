"""Transferability scores of frozen features: how well a model's features fit the labels before
any fine-tuning. Higher is better for all three.

- LogME (You et al. 2021, "LogME: Practical Assessment of Pre-trained Models for Transfer
  Learning"): the log marginal likelihood (evidence) of a Bayesian linear model from features to
  each class's one-vs-rest target, per example, averaged over classes. alpha (prior precision of
  the weights) and beta (noise precision) are set by MacKay's fixed-point iteration; one SVD of
  the features makes every iteration O(d) instead of a d x d solve.
- kNN accuracy: stratified k-fold accuracy of a cosine k-nearest-neighbour vote.
- Probe accuracy: out-of-fold accuracy of a standardized logistic regression (the doctor's probe).
"""
from __future__ import annotations

import time

import numpy as np

from ftkit.data.label_noise import out_of_fold
from ftkit.errors import DataError

EPS = 1e-12


def transferability(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict:
    """{"logme", "knn_accuracy", "probe_accuracy", "seconds": {"logme", "knn", "probe"}, "n", "classes"}.

    Rows of classes with fewer than 2 examples are left out (a class needs a row on each side of
    a fold); the scores are on the rest.
    """
    from threadpoolctl import threadpool_limits

    x, y = usable(np.asarray(features, dtype=np.float64), np.asarray(labels))
    out: dict = {"n": int(len(y)), "classes": int(y.max() + 1), "seconds": {}}
    # One BLAS thread: multi-threaded BLAS next to torch on shared CPUs was ~50x slower (label_noise.py).
    with threadpool_limits(limits=1):
        for key, name, fn in (("logme", "logme", logme), ("knn_accuracy", "knn", knn_accuracy),
                              ("probe_accuracy", "probe", probe_accuracy)):
            tick = time.perf_counter()
            out[key] = float(fn(x, y) if fn is logme else fn(x, y, seed=seed))
            out["seconds"][name] = round(time.perf_counter() - tick, 3)
    return out


def usable(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of classes with at least 2 examples, labels renumbered 0..C-1."""
    counts = np.bincount(labels)
    keep = counts[labels] >= 2
    present = np.flatnonzero(counts >= 2)
    if len(present) < 2:
        raise DataError("ranking needs at least two classes with two or more training rows each")
    remap = np.full(len(counts), -1)
    remap[present] = np.arange(len(present))
    return features[keep], remap[labels[keep]]


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """Mean over classes of the per-example log evidence of the one-vs-rest target (nats)."""
    f = np.asarray(features, dtype=np.float64)
    spectrum = Spectrum(f)
    targets = np.eye(int(labels.max()) + 1)[labels]  # (n, classes) one-hot
    return float(np.mean([evidence(spectrum, targets[:, c])[0] for c in range(targets.shape[1])]))


class Spectrum:
    """SVD of the features, f = u diag(sigma) vt, kept once for every class's target."""

    def __init__(self, f: np.ndarray):
        self.n, self.d = f.shape
        self.u, sigma, self.vt = np.linalg.svd(f, full_matrices=False)  # (n, k), (k,), (k, d)
        self.sigma = sigma
        self.s = sigma ** 2  # eigenvalues of f.T @ f (the other d - k are 0)


def evidence(sp: Spectrum, y: np.ndarray, tol: float = 1e-5, max_iter: int = 100) -> tuple[float, float, float]:
    """(log evidence / n, alpha, beta) at MacKay's fixed point for one target y (n,).

    Model: y = f w + noise, w ~ N(0, I/alpha), noise ~ N(0, I/beta). With z = u.T y the posterior
    mean is m = vt.T (beta sigma z / (alpha + beta s)), so each step is O(k) after the SVD.
    """
    z = sp.u.T @ y  # (k,) target in the left singular basis
    outside = max(float(y @ y - z @ z), 0.0)  # part of y no weight vector can reach
    alpha, beta = 1.0, 1.0
    for _ in range(max_iter):
        coef = beta * sp.sigma * z / (alpha + beta * sp.s)  # m in the right singular basis
        gamma = float((beta * sp.s / (alpha + beta * sp.s)).sum())  # effective number of parameters
        m2 = float(coef @ coef)
        residual = float(((z - sp.sigma * coef) ** 2).sum()) + outside
        new_alpha, new_beta = gamma / (m2 + EPS), (sp.n - gamma) / (residual + EPS)
        done = abs(new_alpha / new_beta - alpha / beta) <= tol * alpha / beta
        alpha, beta = new_alpha, new_beta
        if done:
            break
    coef = beta * sp.sigma * z / (alpha + beta * sp.s)
    m2 = float(coef @ coef)
    residual = float(((z - sp.sigma * coef) ** 2).sum()) + outside
    # log|alpha I + beta f.T f| over all d eigenvalues: the d - k zero ones contribute log(alpha)
    logdet = float(np.log(alpha + beta * sp.s).sum()) + (sp.d - len(sp.s)) * np.log(alpha)
    total = (sp.d / 2 * np.log(alpha) + sp.n / 2 * np.log(beta) - beta / 2 * residual - alpha / 2 * m2
             - logdet / 2 - sp.n / 2 * np.log(2 * np.pi))
    return total / sp.n, alpha, beta


def knn_accuracy(features: np.ndarray, labels: np.ndarray, k: int = 10, folds: int = 5, seed: int = 0) -> float:
    """Stratified k-fold accuracy of a cosine kNN vote (k neighbours, fewer on tiny data)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    cv = StratifiedKFold(n_splits=_folds(labels, folds), shuffle=True, random_state=seed)
    neighbours = max(1, min(k, len(labels) // 4))
    # Euclidean on unit-length rows ranks neighbours as cosine does, and all-zero rows (a dead
    # random body) stay defined instead of dividing by zero.
    unit = features / (np.linalg.norm(features, axis=1, keepdims=True) + EPS)
    vote = KNeighborsClassifier(n_neighbors=neighbours)
    return float((cross_val_predict(vote, unit, labels, cv=cv) == labels).mean())


def probe_accuracy(features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """Out-of-fold accuracy of the doctor's linear probe (standardize + logistic regression)."""

    probs = out_of_fold(features, labels, folds, seed)
    return float((probs.argmax(axis=1) == labels).mean())


def _folds(labels: np.ndarray, folds: int) -> int:
    return max(2, min(folds, int(np.bincount(labels).min())))
