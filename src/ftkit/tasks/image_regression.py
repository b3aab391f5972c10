"""Image regression: a number per image (an age, a score, a measurement), from a table of image
paths whose label column holds numbers (`--label-type number`).

Reading, preprocessing, models and augmentation are image classification's (tasks/
image_classification.py); the head has one standardised output (tasks/regression.py). Mixup and
cutmix mix class ids in kornia and are refused here.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ftkit.config import FitConfig
from ftkit.data.targets import table_targets
from ftkit.errors import ConfigError
from ftkit.evaluation.regression_metrics import regression_metrics
from ftkit.tasks import TASKS
from ftkit.tasks.image_classification import (ImageClassification, ImageClassifier, ImageEncoded, ImageExamples,
                                              Preprocess, encode, predict_proba, read_images)
from ftkit.tasks.regression import REGRESSION, RegressionEvaluation, target_meta, value_frame, values_of


def encode_values(examples: ImageExamples, prep: Preprocess) -> ImageEncoded:
    """Pixels as for one label; targets as (n,) float32 in their own units."""
    data = encode(examples, prep, None)
    data.labels = None if examples.labels is None else np.asarray(examples.labels, dtype=np.float32)
    data.n_classes = 1
    return data


@TASKS.register("image-regression", "a number per image (a table of paths; --label-type number)")
class ImageRegression(RegressionEvaluation, ImageClassification):
    name = "image-regression"
    capabilities = replace(REGRESSION, schema_scan=True)

    def prepare_data(self, cfg: FitConfig):
        augment = cfg.data.augment
        if augment.enabled and (augment.mixup or augment.cutmix):
            flag = "data.augment.mixup" if augment.mixup else "data.augment.cutmix"
            raise ConfigError(f"--set {flag}=true: mixing images mixes class ids, not numeric targets; turn it off")
        splits = super().prepare_data(cfg)
        splits.numeric_target = True
        return splits

    def label_names(self, train: ImageExamples, column: str = "value") -> list[str]:
        return super().label_names(train, column)

    def encode(self, examples: ImageExamples, prep: Preprocess, cfg: FitConfig, labels: list[str]) -> ImageEncoded:
        return encode_values(examples, prep)

    def evaluate(self, model, data: ImageEncoded, labels: list[str], batch_size: int, precision: str):
        return self.scored(model, predict_proba(model, data, batch_size, precision, raw=True), data.labels)

    def prediction_frame(self, examples: ImageExamples, values: np.ndarray, labels: list[str]) -> pd.DataFrame:
        return value_frame(examples.rows, "image", examples.paths, examples.labels, values)

    def save(self, model, prep: Preprocess, folder: Path, meta: dict, cfg: FitConfig) -> None:
        super().save(model, prep, folder, {**meta, "target": target_meta(model), "loss": cfg.train.loss}, cfg)

    def predictor(self, folder: Path) -> "ImageRegressor":
        return ImageRegressor(folder)


class ImageRegressor(ImageClassifier):
    """A saved image regression model: the standardised output mapped back with ftkit.json's target."""

    def read(self, path: str, columns: Optional[dict] = None, labelled: bool = True) -> ImageExamples:
        columns = columns or {}
        label = (columns.get("label") or self.meta["label_column"]) if labelled else None
        return read_images(path, columns.get("image") or self.meta["image_column"], label, skip_bad=False,
                           allow_outside=True, read_labels=table_targets)

    def encode(self, examples: ImageExamples) -> ImageEncoded:
        return encode_values(examples, self.prep)

    def _scaled_probs(self, data: ImageEncoded, batch_size: int = 64) -> np.ndarray:
        outputs = predict_proba(self.model, data, batch_size, self.meta.get("eval_precision", "fp32"), raw=True)
        return values_of(outputs, self.meta)

    def evaluate(self, examples: ImageExamples) -> tuple[dict, np.ndarray]:
        data = self.encode(examples)
        values = self._scaled_probs(data)
        return regression_metrics(values, data.labels, self.meta["target"]["std"]), values

    def predict(self, paths: list) -> list[dict]:
        examples = ImageExamples([str(p) for p in paths], None, "<input>", [str(p) for p in paths], "file")
        return [{"value": float(v)} for v in self.predict_proba(examples)]

    def frame(self, examples: ImageExamples, values: np.ndarray) -> pd.DataFrame:
        return value_frame(examples.rows, "image", examples.paths, examples.labels, values)
