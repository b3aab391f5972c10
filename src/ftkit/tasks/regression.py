"""What text and image regression share (a number per example): one output, trained on the target
standardised with the training split's mean and std (kept on the model's config and in ftkit.json,
so predictions come back in the target's own units), MSE or Huber loss, RMSE / MAE / R² / Spearman /
Pearson with bootstrap intervals, and the predictions table. The tasks (text-regression,
image-regression) live beside their classification siblings, whose reading, models and inputs they
reuse.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from ftkit.data.targets import table_targets, target_scale
from ftkit.errors import ConfigError, DataError
from ftkit.evaluation.regression_metrics import METRICS, mean_baseline, regression_ci, regression_metrics
from ftkit.lazy import torch
from ftkit.tasks.base import Capabilities

# One number per example: no softmax to calibrate, no classes to oversample, smooth or weigh, and no
# class to score in model ranking's probes (feature_probe off). The "is it worth it?" baselines are
# predicting the training mean and a ridge regression on frozen features (runs/ridge.py).
REGRESSION = Capabilities(scaled_target=True, label_smoothing=False, mean_baseline=True, ridge_probe=True)


def _mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    return F.mse_loss(pred, target)


def _huber(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    return F.huber_loss(pred, target, delta=1.0)  # delta in standard deviations of the target


LOSSES = {"mse": _mse, "huber": _huber}  # train.loss


def no_unknown_labels(part, labels) -> None:
    """Numbers have no vocabulary: any finite value in validation/test is a valid target."""


def model_scale(model) -> tuple[float, float]:
    """(mean, std) the model's standardised output is mapped back with (set by scale_target)."""
    scale = getattr(model, "ftkit_target", None)
    assert scale is not None, "scale_target() was not called on this model: its outputs have no units"
    return float(scale[0]), float(scale[1])


class RegressionEvaluation:
    """Mixed in before a classification task class (its reading and model are kept; its softmax
    evaluation is replaced). Examples carry `labels` as floats; encoded splits as (n,) float32."""

    default_metric: ClassVar[str] = "rmse"
    metrics: ClassVar[tuple[str, ...]] = METRICS
    stratify = False  # numbers have no classes: held-out parts and CV folds are plain shuffled splits
    check_known = staticmethod(no_unknown_labels)
    calibration = None
    group_metrics = None
    metrics_from_probs = None  # no probabilities: the linear probe trains behind the frozen body instead
    read_reference = None  # retention needs one class per input of the original task

    def label_reader(self, d):
        return table_targets

    def label_names(self, train, column: str) -> list[str]:
        """One output, named after the target column."""
        if len(set(train.labels)) < 2:
            raise DataError(f"{train.source}: column {column!r} holds a single value {train.labels[0]!r}; "
                            "regression needs a target that varies")
        return [column]

    def scale_target(self, model, train) -> None:
        """Standardise the target: the model learns (y - mean) / std of the training split."""
        mean, std = target_scale(train.labels)
        model.ftkit_target = (mean, std)  # any torch module (EfficientNet has no config); read by evaluation
        config = getattr(model, "config", None)
        if config is not None and not isinstance(config, dict):  # transformers: kept in config.json too
            config.target_mean, config.target_std = mean, std
            config.problem_type = "regression"  # plain transformers loads it with one output and MSE

    def criterion(self, cfg, train):
        """(outputs (batch, 1), raw targets (batch,)) -> train.loss on standardised targets."""
        if cfg.train.class_weights == "auto":
            raise ConfigError("--set train.class_weights=auto: a numeric target has no classes to weigh")
        if cfg.train.label_smoothing > 0:
            raise ConfigError(f"--set train.label_smoothing={cfg.train.label_smoothing:g}: a numeric target has no "
                              "classes to smooth over (try --set train.loss=huber for noisy targets)")
        mean, std = target_scale(train.labels)
        loss_of = LOSSES[cfg.train.loss]

        def loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return loss_of(outputs.float().squeeze(-1), (targets.float() - mean) / std)

        return loss

    def scored(self, model, outputs: np.ndarray, targets) -> tuple[dict, np.ndarray]:
        """(metrics, predicted values) from the model's (n, 1) standardised outputs."""
        mean, std = model_scale(model)
        values = outputs[:, 0].astype(np.float64) * std + mean if len(outputs) else np.zeros(0)
        if targets is None:
            return {}, values
        # "is it worth it?" at its plainest: every example predicted as the training mean
        return {**regression_metrics(values, targets, std), "mean_baseline": mean_baseline(mean, targets, std)}, values

    def standardised_targets(self, model, data) -> np.ndarray:
        """(n,) targets of an encoded split as the model learns them: (y - mean) / std of train."""
        mean, std = model_scale(model)
        return (np.asarray(data.labels, dtype=np.float64) - mean) / std

    def score_standardised(self, model, outputs: np.ndarray, data) -> tuple[dict, np.ndarray]:
        """(metrics, values) of (n,) standardised predictions made outside the model (the ridge
        probe), scored exactly as the model's own outputs are."""
        return self.scored(model, np.asarray(outputs, dtype=np.float64).reshape(-1, 1), data.labels)

    def confidence_intervals(self, data, values: np.ndarray, labels: list[str], n_boot: int, level: float,
                             seed: int) -> dict:
        """Bootstrap intervals of rmse, mae, r2, spearman and pearson, resampling examples."""
        return regression_ci(np.asarray(values).reshape(-1), data.labels, n_boot, level, seed)


def value_frame(rows, key: str, inputs, targets, values: np.ndarray):
    """One row per example: input, the true target when known, the predicted value (predictions.csv)."""
    import pandas as pd

    frame = pd.DataFrame({"row": rows, key: inputs})
    if targets is not None:
        frame["label"] = targets
    frame["predicted"] = np.asarray(values, dtype=np.float64)
    return frame


def values_of(outputs: np.ndarray, meta: dict) -> np.ndarray:
    """A saved model's (n, 1) standardised outputs -> values in the target's units (ftkit.json)."""
    target = meta.get("target") or {"mean": 0.0, "std": 1.0}
    return outputs[:, 0].astype(np.float64) * target["std"] + target["mean"] if len(outputs) else np.zeros(0)


def target_meta(model) -> dict:
    mean, std = model_scale(model)
    return {"mean": mean, "std": std}
