"""What every task hands the shared engine: the `Task` protocol, its declared `Capabilities`, and
the `Splits` and `Encoded` shapes it trades in.

The engine (runs/, evaluation/, data/doctor, advisor/, selection/) never asks a task's name or
probes it with hasattr: it reads `task.capabilities` and calls the method each capability names
(`CAPABILITY_METHODS`); tests/test_task_contract.py holds every registered task to that.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Mapping, Optional, Protocol, runtime_checkable

import numpy as np

from ftkit.lazy import inference_mode, torch  # task modules load without torch (data is checked first)


class Encoded(Protocol):
    """A split turned into model inputs; the training loop only needs these three things."""

    lengths: np.ndarray  # (n,) input sizes, for length-grouped batches

    def __len__(self) -> int: ...

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]: ...


@dataclass
class Splits:
    """Validated examples per split plus the record of how they were made."""

    train: Any
    validation: Optional[Any]
    test: Optional[Any]
    labels: list[str]
    record: dict = field(default_factory=dict)  # saved as splits.json
    label_sets: bool = False  # each example's label is a tuple of labels (multi-label)
    numeric_target: bool = False  # each example's label is a number (regression): no classes to count

    def named(self) -> dict[str, Any]:
        return {k: v for k, v in (("train", self.train), ("validation", self.validation),
                                  ("test", self.test)) if v is not None}


@dataclass(frozen=True)
class Capabilities:
    """What a task can do beyond the core protocol; each task class declares its own. A capability
    that names methods in CAPABILITY_METHODS is true exactly when the task implements them."""

    zero_shot: bool = False  # zero_shot(), change_ci(): the pretrained model already does the task
    encoder_cache: bool = False  # cache_encoder(): frozen-encoder outputs cached (frozen-encoder strategy)
    calibration: bool = False  # calibration(): ECE, temperature scaling (eval.calibrate)
    group_metrics: bool = False  # group_metrics(): per-group test metrics (--group-column)
    probabilities: bool = False  # metrics_from_probs(): one probability row per example
    schema_scan: bool = False  # scan_file(): `ftkit doctor` lists every raw-file problem
    retention_reader: bool = False  # read_reference(): retention's reference data (--reference-data)
    feature_probe: bool = False  # one frozen feature vector per example (rank, advise, label noise)
    single_label: bool = False  # one class per example: train.oversample can balance them
    label_smoothing: bool = True  # train.label_smoothing applies (tuned by `ftkit tune`)
    text_max_length: bool = False  # data.max_length counts tokens of text (saved for predictors)
    truncation_check: bool = False  # the doctor counts truncated inputs with the model's tokenizer
    thresholds: bool = False  # tune_thresholds(), at_thresholds(): decisions at per-label thresholds (multi-label)
    scaled_target: bool = False  # scale_target(): a numeric target standardised with train's mean/std (regression)
    mean_baseline: bool = False  # metrics carry `mean_baseline` (predicting train's mean): `--baseline mean`
    ridge_probe: bool = False  # standardised_targets(), score_standardised(): `--baseline probe` is a ridge
    #                            regression on the frozen body's cached features, fitted in closed form


# The methods each capability promises (capabilities without an entry are plain switches).
CAPABILITY_METHODS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "zero_shot": ("zero_shot", "change_ci"), "encoder_cache": ("cache_encoder",),
    "calibration": ("calibration",), "group_metrics": ("group_metrics",),
    "probabilities": ("metrics_from_probs",), "schema_scan": ("scan_file",),
    "retention_reader": ("read_reference",), "thresholds": ("tune_thresholds", "at_thresholds"),
    "scaled_target": ("scale_target",),
    "ridge_probe": ("standardised_targets", "score_standardised")})
assert set(CAPABILITY_METHODS) <= {f.name for f in fields(Capabilities)}


# What a predictor's predict() takes, per input: a string; a string or a list of words (NER); an image
# or an audio file (a path locally; `ftkit serve` writes uploaded bytes to a temporary file).
INPUT_KINDS = ("text", "words", "image", "audio")


@runtime_checkable
class Task(Protocol):
    """What the engine calls on every task (runs/fit.py, runs/probe.py, evaluation/, data/doctor,
    advisor/, selection/). Optional parts are behind `capabilities` (see CAPABILITY_METHODS)."""

    name: str
    default_metric: str
    metrics: tuple[str, ...]
    capabilities: Capabilities
    train_eval_limit: Optional[int]  # cap on the training rows re-scored at each validation
    eval_batch_limit: Optional[int]  # cap on evaluation / feature batches
    advise_strategies: tuple[str, ...]  # what `ftkit advise` / `tune` try by default; () = theirs
    strategy_lr: Mapping[str, float]  # per-strategy default lr overrides
    body_lr: Optional[float]  # lr for updating the whole pretrained body; None: strategies' FULL_LR
    input_kind: str  # what predict() takes (INPUT_KINDS): how `ftkit serve` reads a request's inputs

    def eval_batch(self, cfg) -> int: ...  # examples per evaluation / feature batch

    def prepare_data(self, cfg) -> Splits: ...

    def build(self, cfg, source, labels: list[str]) -> tuple[Any, Any]: ...  # (model, processor)

    def encode(self, examples, processor, cfg, labels: list[str]) -> Encoded: ...

    def make_loss(self, cfg, train: Encoded): ...  # (model, batch) -> scalar loss

    def evaluate(self, model, data: Encoded, labels: list[str], batch_size: int,
                 precision: str) -> tuple[dict, Any]: ...  # (metrics, outputs)

    def confidence_intervals(self, data, outputs, labels: list[str], n_boot: int, level: float,
                             seed: int) -> dict: ...

    def prediction_frame(self, examples, outputs, labels: list[str]): ...

    def save(self, model, processor, folder: Path, meta: dict, cfg) -> None: ...

    def predictor(self, folder: Path): ...


class TaskBase:
    """Defaults of the Task protocol's plain attributes; a task class overrides what it needs."""

    capabilities: ClassVar[Capabilities] = Capabilities()
    train_eval_limit: ClassVar[Optional[int]] = None
    eval_batch_limit: ClassVar[Optional[int]] = None
    advise_strategies: ClassVar[tuple[str, ...]] = ()
    strategy_lr: ClassVar[Mapping[str, float]] = MappingProxyType({})
    body_lr: ClassVar[Optional[float]] = None
    input_kind: ClassVar[str] = "text"

    def eval_batch(self, cfg) -> int:
        """Examples per evaluation / feature batch: train.eval_batch_size, capped where a task's
        inputs are huge (Whisper's 30 s windows: 64 clips took ~7 GB on a CPU)."""
        return min(cfg.train.eval_batch_size, self.eval_batch_limit or cfg.train.eval_batch_size)

    def scores_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """(n, classes) scores of a head's logits (linear probe on cached features): a softmax;
        multi-label tasks take one sigmoid per label."""
        return torch.softmax(logits.float(), dim=-1)


# Per-example classifiers (text, image, audio) share these; each adds its own reading and model.
CLASSIFIER = Capabilities(calibration=True, group_metrics=True, probabilities=True, feature_probe=True,
                          single_label=True)


class PerExampleEvaluation(TaskBase):
    """Evaluation shared by tasks with one label and one probability row per example (text and
    image classification): metrics, bootstrap intervals, calibration and per-group metrics."""

    capabilities: ClassVar[Capabilities] = CLASSIFIER

    def criterion(self, cfg, train):
        """(logits, labels) -> cross-entropy with the configured label smoothing and class weights
        (`train.labels`: class ids, `train.n_classes`); also used on cached features (linear probe)."""
        import torch.nn.functional as F

        from ftkit.tasks.common import class_weights

        weights = class_weights(train.labels, train.n_classes) if cfg.train.class_weights == "auto" else None
        smoothing = cfg.train.label_smoothing

        def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            w = None if weights is None else weights.to(logits.device)
            return F.cross_entropy(logits.float(), labels, weight=w, label_smoothing=smoothing)

        return loss

    def metrics_from_probs(self, probs: np.ndarray, label_ids: np.ndarray, labels: list[str]) -> dict:
        from ftkit.evaluation.metrics import classification_metrics

        return classification_metrics(probs, label_ids, labels)

    def confidence_intervals(self, data, probs: np.ndarray, labels: list[str], n_boot: int, level: float,
                             seed: int) -> dict:
        """Bootstrap intervals of accuracy and macro-F1, resampling examples."""
        from ftkit.evaluation.bootstrap import classification_ci

        return classification_ci(probs, data.labels, len(labels), n_boot, level, seed)

    def calibration(self, data, probs: np.ndarray, fit_on: Optional[tuple] = None):
        """ECE and reliability bins; fit_on=(validation data, its probs): temperature scaling too."""
        from ftkit.evaluation.calibration import calibration_report

        return calibration_report(probs, data.labels, fit_on and (fit_on[1], fit_on[0].labels))

    def group_metrics(self, data, probs: np.ndarray, groups: list[str], column: str, min_size: int) -> dict:
        from ftkit.evaluation.slices import group_metrics as slice_metrics

        return slice_metrics(probs, data.labels, groups, column, min_size)


def class_prediction_frame(rows, key: str, inputs, true_labels, probs, labels: list[str]):
    """One row per example: its input (column `key`), the true label when known, the predicted
    label, its probability and every class's probability (the predictions.csv of classifiers)."""
    import pandas as pd

    frame = pd.DataFrame({"row": rows, key: inputs})
    if true_labels is not None:
        frame["label"] = true_labels
    frame["predicted"] = [labels[i] for i in probs.argmax(axis=1)]
    frame["score"] = probs.max(axis=1)
    for i, name in enumerate(labels):
        frame[f"prob_{name}"] = probs[:, i]
    return frame


@inference_mode
def longest_first_proba(model, data, batch_size: int, precision: str, batch_of=None,
                        multi_label: bool = False, raw: bool = False) -> np.ndarray:
    """(n, classes) softmax (`multi_label`: one sigmoid per label; `raw`: the logits themselves, a
    regression head's outputs) of `model(**batch).logits` over `data`, in data order; rows run
    longest first so batches carry little padding.
    `batch_of(indices)`: the model inputs (default `data.batch`); labels are dropped."""
    from ftkit.training.device import autocast

    batch_of = batch_of or data.batch
    model.eval()
    device = next(model.parameters()).device
    order = np.argsort(-data.lengths, kind="stable")
    probs = None
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = {k: v.to(device) for k, v in batch_of(idx).items() if k != "labels"}
        with autocast(precision, device):
            logits = model(**batch).logits  # (batch, classes)
        if probs is None:
            probs = np.zeros((len(data), logits.shape[1]), dtype=np.float32)
        scores = (logits.float() if raw else torch.sigmoid(logits.float()) if multi_label
                  else torch.softmax(logits.float(), dim=-1))
        probs[idx] = scores.cpu().numpy()
    return probs if probs is not None else np.zeros((0, getattr(data, "n_classes", 0)), dtype=np.float32)
