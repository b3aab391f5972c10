"""Ridge regression on frozen features: the linear probe of a numeric target, in closed form.

A head trained by SGD on a few epochs of frozen features is a weak, lr-dependent baseline; the
ridge solution is the best linear readout for each penalty, and scikit-learn's RidgeCV picks the
penalty on the training features alone by its efficient leave-one-out error (generalised
cross-validation: one SVD / eigendecomposition for the whole grid, no refits). Features are
standardised with the training split's mean and std first, so one alpha grid fits any body
(MiniLM's pooled features have std ~0.04; an EfficientNet's are in the tens).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

ALPHAS = tuple(float(a) for a in np.logspace(-3, 6, 37))  # 1e-3 .. 1e6, four per decade


@dataclass
class RidgeProbe:
    """A fitted ridge probe: standardise with train's statistics, then w·x + b."""

    pipeline: object  # sklearn Pipeline(StandardScaler, RidgeCV)
    alpha: float  # the penalty leave-one-out chose
    alphas: tuple[float, ...]  # the grid it chose from
    loo_mse: float  # leave-one-out mean squared error at `alpha`, in the targets' (standardised) units

    @property
    def at_edge(self) -> bool:
        """The chosen alpha is the grid's smallest or largest: the best may lie outside it."""
        return self.alpha in (min(self.alphas), max(self.alphas))

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(n, dim) features -> (n,) predictions in the units of the targets it was fitted on."""
        if len(features) == 0:
            return np.zeros(0)
        return np.asarray(self.pipeline.predict(features.astype(np.float64)), dtype=np.float64)

    def record(self) -> dict:
        return {"name": "ridge", "alpha": self.alpha, "alpha_at_edge": self.at_edge,
                "alphas": {"min": min(self.alphas), "max": max(self.alphas), "n": len(self.alphas)},
                "selection": "RidgeCV efficient leave-one-out (GCV) on the training features",
                "loo_mse": round(self.loo_mse, 6), "features": "standardised with the training split's mean/std"}


def fit_ridge(features: np.ndarray, targets: np.ndarray, alphas: tuple[float, ...] = ALPHAS) -> RidgeProbe:
    """features: (n, dim) of the training split; targets: (n,). Alpha by leave-one-out on them."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    assert len(features) == len(targets) and len(features) > 1, "ridge needs two or more training rows"
    ridge = RidgeCV(alphas=list(alphas))  # cv=None: efficient leave-one-out, scored by squared error
    pipeline = make_pipeline(StandardScaler(), ridge)
    pipeline.fit(features.astype(np.float64), np.asarray(targets, dtype=np.float64))
    probe = RidgeProbe(pipeline, float(ridge.alpha_), tuple(alphas), float(-ridge.best_score_))
    if probe.alpha == max(alphas):  # the strongest penalty: the features predict (almost) nothing
        log.warning("ridge probe: alpha %g is the largest of its grid: the frozen features barely predict "
                    "the target", probe.alpha)
    elif probe.alpha == min(alphas):  # next to no penalty: plain least squares
        log.info("ridge probe: alpha %g is the smallest of its grid (least squares, practically)", probe.alpha)
    return probe
