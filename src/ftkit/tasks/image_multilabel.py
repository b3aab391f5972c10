"""Image multi-label: a set of labels per image (tags, attributes), from a table of image paths whose
label column holds '|'-joined labels (`--label-sep "|"`) or JSON lists.

Reading, preprocessing, models and augmentation are image classification's (tasks/
image_classification.py); the head has one sigmoid per label (tasks/multilabel.py). Mixup and
cutmix mix class ids in kornia and are refused here.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import pandas as pd

from ftkit.config import FitConfig
from ftkit.data.label_sets import check_known_sets, set_vocabulary, table_label_sets
from ftkit.errors import ConfigError, DataError
from ftkit.models.loading import ModelSource
from ftkit.tasks import TASKS
from ftkit.tasks.image_classification import (ImageClassification, ImageClassifier, ImageEncoded, ImageExamples,
                                              Preprocess, encode, predict_proba, read_images)
from ftkit.tasks.multilabel import (MULTILABEL, LabelScores, MultiLabelEvaluation, predictions, saved_thresholds,
                                    set_prediction_frame, set_targets)


def label_set_reader(label_sep: Optional[str], allow_empty: bool):
    return lambda table, column: table_label_sets(table, column, label_sep, allow_empty)


def encode_sets(examples: ImageExamples, prep: Preprocess, labels: list[str]) -> ImageEncoded:
    """Pixels as for one label; `labels` become (n, labels) 0/1 targets."""
    return set_targets(encode(examples, prep, None), examples.labels, labels)


@TASKS.register("image-multilabel", "a set of labels per image (a table of paths; --label-sep \"|\" or JSON lists)")
class ImageMultiLabel(MultiLabelEvaluation, ImageClassification):
    name = "image-multilabel"
    capabilities = replace(MULTILABEL, schema_scan=True)
    stratify = "sets"  # iterative stratification of the label sets
    check_known = staticmethod(check_known_sets)
    read_reference = None  # retention needs one class per input of the original task

    def prepare_data(self, cfg: FitConfig):
        augment = cfg.data.augment
        if augment.enabled and (augment.mixup or augment.cutmix):
            flag = "data.augment.mixup" if augment.mixup else "data.augment.cutmix"
            raise ConfigError(f"--set {flag}=true: mixing images is for one class per image, not label sets; "
                              "turn it off")
        return super().prepare_data(cfg)

    def label_reader(self, d):
        return label_set_reader(d.label_sep, d.allow_empty_labels)

    def label_names(self, train: ImageExamples) -> list[str]:
        labels = set_vocabulary(train.labels)
        if not labels:
            raise DataError(f"{train.source}: the label column holds no label at all")
        return labels

    def build(self, cfg: FitConfig, source: ModelSource, labels: list[str]):
        model, prep = super().build(cfg, source, labels)
        config = getattr(model, "config", None)
        if config is not None:  # a transformers model: its saved folder loads with a sigmoid head
            config.problem_type = "multi_label_classification"
        return model, prep

    def encode(self, examples: ImageExamples, prep: Preprocess, cfg: FitConfig, labels: list[str]) -> ImageEncoded:
        return encode_sets(examples, prep, labels)

    def evaluate(self, model, data: ImageEncoded, labels: list[str], batch_size: int, precision: str):
        return self.scored(predict_proba(model, data, batch_size, precision, multi_label=True), data.labels, labels)

    def prediction_frame(self, examples: ImageExamples, scores: LabelScores, labels: list[str]) -> pd.DataFrame:
        return set_prediction_frame(examples.rows, "image", examples.paths, examples.labels, scores, labels)

    def save(self, model, prep: Preprocess, folder: Path, meta: dict, cfg: FitConfig) -> None:
        super().save(model, prep, folder, {**meta, "label_sep": cfg.data.label_sep,
                                            "allow_empty_labels": cfg.data.allow_empty_labels}, cfg)

    def predictor(self, folder: Path) -> "ImageMultiLabeler":
        return ImageMultiLabeler(folder)


class ImageMultiLabeler(ImageClassifier):
    """A saved multi-label image model: labels at or above their thresholds (from ftkit.json)."""

    def __init__(self, folder: Path):
        super().__init__(folder)
        self.thresholds = saved_thresholds(self.meta)

    def read(self, path: str, columns: Optional[dict] = None, labelled: bool = True) -> ImageExamples:
        columns = columns or {}
        label = (columns.get("label") or self.meta["label_column"]) if labelled else None
        reader = label_set_reader(self.meta.get("label_sep"), self.meta.get("allow_empty_labels", False))
        return read_images(path, columns.get("image") or self.meta["image_column"], label, skip_bad=False,
                           allow_outside=True, read_labels=reader)

    def encode(self, examples: ImageExamples) -> ImageEncoded:
        if examples.labels is not None:
            check_known_sets(examples, self.labels)
        return encode_sets(examples, self.prep, self.labels)

    def _scaled_probs(self, data: ImageEncoded, batch_size: int = 64) -> LabelScores:
        probs = predict_proba(self.model, data, batch_size, self.meta.get("eval_precision", "fp32"), multi_label=True)
        return LabelScores(probs, self.thresholds)

    def evaluate(self, examples: ImageExamples) -> tuple[dict, LabelScores]:
        data = self.encode(examples)
        return MultiLabelEvaluation().at_thresholds(data, self._scaled_probs(data), self.labels, self.thresholds)

    def predict(self, paths: list) -> list[dict]:
        examples = ImageExamples([str(p) for p in paths], None, "<input>", [str(p) for p in paths], "file")
        return predictions(self.predict_proba(examples), self.labels)

    def frame(self, examples: ImageExamples, scores: LabelScores) -> pd.DataFrame:
        return set_prediction_frame(examples.rows, "image", examples.paths, examples.labels, scores, self.labels)
