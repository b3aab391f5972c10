"""Text classification (sentiment, topics, intents, sentence pairs): one label column and one text
column, or several (`--text-column premise,hypothesis`: a text pair, see data/text_columns.py); and
its multi-label sibling (a set of labels per text: `--label-sep "|"` or a JSON list column) and its
regression sibling (a number per text: `--label-type number`)."""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from ftkit.lazy import torch  # loaded at first use: data is read and checked without it

from ftkit.config import FitConfig
from ftkit.data.label_sets import check_known_sets, set_vocabulary, table_label_sets
from ftkit.data.labels import check_known, label_order, table_labels
from ftkit.data.readers import Table, read_table
from ftkit.data.targets import table_targets
from ftkit.data.text_columns import input_segments, joined, read_columns, split_columns, tokenizer_sides
from ftkit.data.splits import split_parts, split_seed
from ftkit.errors import ConfigError, DataError
from ftkit.evaluation.calibration import apply_temperature
from ftkit.evaluation.metrics import classification_metrics
from ftkit.evaluation.regression_metrics import regression_metrics
from ftkit.models.loading import ModelSource, hub_failure, quiet_transformers
from ftkit.models.pooling import ASKED, Pooling, choose_pooling, saved_pooling
from ftkit.strategies import trains_body
from ftkit.tasks import TASKS
from ftkit.tasks.base import CLASSIFIER, PerExampleEvaluation, Splits, class_prediction_frame, longest_first_proba
from ftkit.tasks.common import export_model, load_adapter
from ftkit.tasks.multilabel import (MULTILABEL, LabelScores, MultiLabelEvaluation, predictions, saved_thresholds,
                                    set_prediction_frame, set_targets)
from ftkit.tasks.regression import REGRESSION, RegressionEvaluation, target_meta, value_frame, values_of

log = logging.getLogger(__name__)


@dataclass
class TextExamples:
    texts: list[str]  # several text columns: joined with text_columns.SEGMENT_MARK
    labels: Optional[list]  # class names (multi-label: tuples of them); None for unlabelled data (predict)
    source: str  # file the rows came from
    rows: list[int]  # line (CSV/JSONL) or row (Parquet) number of each example in source
    unit: str = "line"
    segments: Optional[list[tuple[str, ...]]] = None  # several text columns: each row's texts, in column order

    def where(self, i: int) -> str:
        return f"{self.source} {self.unit} {self.rows[i]}"

    def subset(self, keep: list[int]) -> "TextExamples":
        labels = None if self.labels is None else [self.labels[i] for i in keep]
        segments = None if self.segments is None else [self.segments[i] for i in keep]
        return TextExamples([self.texts[i] for i in keep], labels, self.source,
                            [self.rows[i] for i in keep], self.unit, segments)

    def __len__(self) -> int:
        return len(self.texts)


# ---------------------------------------------------------------- reading and validation

def read_examples(path: str, text_column: str, label_column: Optional[str], drop_empty: bool,
                  read_labels=table_labels) -> TextExamples:
    """Read and validate one file; label_column None reads texts only. `read_labels(table, column)`:
    each row's label (multi-label: its label set)."""
    return examples_from(read_table(path), text_column, label_column, drop_empty, read_labels)


def examples_from(table: Table, text_column: str, label_column: Optional[str], drop_empty: bool,
                  read_labels=table_labels) -> TextExamples:
    """`text_column` may name several columns ("premise,hypothesis"): every one must be there and
    filled in on every row."""
    columns = split_columns(text_column)
    for column in columns:
        table.require(column, "--text-column")
    if label_column is not None:
        table.require(label_column, "--label-column")
    table, rows = read_columns(table, columns, drop_empty)
    labels = read_labels(table, label_column) if label_column is not None else None
    if len(columns) == 1:
        return TextExamples([r[0] for r in rows], labels, str(table.path), table.lines, table.unit)
    return TextExamples([joined(r) for r in rows], labels, str(table.path), table.lines, table.unit, rows)


# ---------------------------------------------------------------- model inputs

class TextEncoded:
    """Token ids per example (unpadded); batches are padded to their own longest row. `types`: the
    token_type_ids of text pairs, when the tokenizer makes them (BERT: 0 first side, 1 second)."""

    def __init__(self, ids: list[np.ndarray], labels: Optional[np.ndarray], pad_id: int, n_classes: int = 0,
                 types: Optional[list[np.ndarray]] = None):
        self.ids, self.labels, self.pad_id, self.n_classes, self.types = ids, labels, pad_id, n_classes, types
        self.lengths = np.array([len(x) for x in ids], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def fingerprint(self) -> str:
        """Hash of the model inputs (tokenizer, max length and texts all show in the ids)."""
        digest = hashlib.blake2b(self.lengths.tobytes(), digest_size=16)
        digest.update(np.concatenate(self.ids).tobytes() if self.ids else b"")
        digest.update(str(self.pad_id).encode())
        if self.types is not None:
            digest.update(b"types" + (np.concatenate(self.types).tobytes() if self.types else b""))
        return digest.hexdigest()

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        width = int(self.lengths[indices].max())
        input_ids = np.full((len(indices), width), self.pad_id, dtype=np.int64)  # (batch, seq)
        mask = np.zeros((len(indices), width), dtype=np.int64)
        for row, i in enumerate(indices):
            n = self.lengths[i]
            input_ids[row, :n] = self.ids[i]
            mask[row, :n] = 1
        out = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}
        if self.types is not None:
            types = np.zeros((len(indices), width), dtype=np.int64)  # (batch, seq); padding: 0
            for row, i in enumerate(indices):
                types[row, :self.lengths[i]] = self.types[i]
            out["token_type_ids"] = torch.from_numpy(types)
        if self.labels is not None:
            out["labels"] = torch.from_numpy(self.labels[indices])
        return out


def encode(examples: TextExamples, tokenizer, max_length: int, labels: Optional[list[str]]) -> TextEncoded:
    """Plain texts, or several columns through the tokenizer's pair API (data/text_columns.py)."""
    types = None
    if examples.segments is None:
        ids = tokenizer(examples.texts, truncation=True, max_length=max_length)["input_ids"]
    else:
        first, second = tokenizer_sides(examples.segments, tokenizer.sep_token)
        enc = tokenizer(first, second, truncation="longest_first", max_length=max_length)
        ids = enc["input_ids"]
        if "token_type_ids" in enc:
            types = [np.asarray(x, dtype=np.int64) for x in enc["token_type_ids"]]
    label_ids = None
    if labels is not None and examples.labels is not None:
        index = {name: i for i, name in enumerate(labels)}
        label_ids = np.array([index[v] for v in examples.labels], dtype=np.int64)
    return TextEncoded([np.asarray(x, dtype=np.int64) for x in ids], label_ids, tokenizer.pad_token_id,
                       len(labels or []), types)


def predict_proba(model, data: TextEncoded, batch_size: int, precision: str) -> np.ndarray:
    """(n, classes) probabilities; rows run longest first so batches carry little padding."""
    return longest_first_proba(model, data, batch_size, precision)


def prediction_frame(examples: TextExamples, probs: np.ndarray, labels: list[str]) -> pd.DataFrame:
    return class_prediction_frame(examples.rows, "text", examples.texts, examples.labels, probs, labels)


def head_pooling(cfg: FitConfig, source: ModelSource) -> Optional[Pooling]:
    """What a text head reads for this run (models/pooling.py); None: the architecture's [CLS] head."""
    return choose_pooling(cfg.model.pooling, source.location, cfg.model.normalize_pooled,
                          trains_body(cfg.strategy.name))


def build_classifier(source: ModelSource, labels: list[str], remote: bool, pooling: Optional[Pooling] = None):
    """A fresh sequence-classification head for `labels`; `pooling` (models/pooling.py) replaces
    the architecture's [CLS] pooler with the model's own (None: the architecture's)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ftkit.models.pooler import apply_pooling, poolable

    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source.location, trust_remote_code=remote)
            model = AutoModelForSequenceClassification.from_pretrained(
                source.location, num_labels=len(labels), id2label=dict(enumerate(labels)),
                label2id={n: i for i, n in enumerate(labels)}, ignore_mismatched_sizes=True,
                dtype=torch.float32, trust_remote_code=remote)
    except OSError as err:
        raise hub_failure(source, err) from None
    if tokenizer.pad_token is None:  # GPT-style tokenizers ship without one
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.config.pad_token_id = tokenizer.pad_token_id
    if pooling is not None and pooling.source != ASKED and not poolable(model):  # model.pooling=auto
        log.warning("%s declares %s pooling, which %s cannot take; using its own [CLS] head",
                    source.describe(), pooling.mode, type(model).__name__)
        pooling = None
    if pooling is not None:
        log.info("text head reads the %s (%s)", pooling.describe(), pooling.source)
    apply_pooling(model, pooling)
    return model, tokenizer


# ---------------------------------------------------------------- the task

@TASKS.register("text-classification", "one label per text (sentiment, topic, intent)")
class TextClassification(PerExampleEvaluation):
    name = "text-classification"
    default_metric = "accuracy"
    metrics = ("accuracy", "macro_f1", "loss")
    capabilities = replace(CLASSIFIER, schema_scan=True, retention_reader=True, text_max_length=True,
                           truncation_check=True)

    def prepare_data(self, cfg: FitConfig) -> Splits:
        """Read, validate and split; writes nothing."""
        d = cfg.data
        if not d.train:
            raise ConfigError("no training data: pass --train PATH (CSV, TSV, JSONL or Parquet)")
        read = lambda p: read_examples(p, d.text_column, d.label_column, d.drop_empty, self.label_reader(d))  # noqa: E731
        train = read(d.train)
        labels = self.label_names(train, d.label_column)
        seed = split_seed(cfg)
        record = {"seed": seed, "train_source": train.source}
        train, validation, test = split_parts(train, read, d, seed, record, stratify=self.stratify)
        for part in (validation, test):
            if part is not None:
                self.check_known(part, labels)
        for name, part in (("train", train), ("validation", validation), ("test", test)):
            if part is not None:
                record[name] = {"source": part.source, "n": len(part), f"{part.unit}s": part.rows}
        return Splits(train, validation, test, labels, record, label_sets=self.stratify == "sets")

    # What the multi-label sibling changes in prepare_data: how labels are read, named, checked, split.
    stratify = True
    check_known = staticmethod(check_known)

    def label_reader(self, d):
        return table_labels

    def label_names(self, train: TextExamples, column: str) -> list[str]:
        labels = label_order(train.labels)
        if len(labels) < 2:
            raise DataError(f"{train.source}: column {column!r} holds a single class "
                            f"{labels[0]!r}; classification needs at least two")
        return labels

    def build(self, cfg: FitConfig, source: ModelSource, labels: list[str]):
        """(model, tokenizer) with a fresh head for `labels`; weights in fp32."""
        return build_classifier(source, labels, cfg.model.trust_remote_code, head_pooling(cfg, source))

    def encode(self, examples: TextExamples, tokenizer, cfg: FitConfig, labels: list[str]) -> TextEncoded:
        return encode(examples, tokenizer, cfg.data.max_length, labels)

    def make_loss(self, cfg: FitConfig, train: TextEncoded):
        criterion = self.criterion(cfg, train)

        def loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits  # ids, mask (+ token types)
            return criterion(logits, batch["labels"])

        return loss

    def evaluate(self, model, data: TextEncoded, labels: list[str], batch_size: int, precision: str):
        probs = predict_proba(model, data, batch_size, precision)
        return classification_metrics(probs, data.labels, labels), probs

    def prediction_frame(self, examples: TextExamples, probs: np.ndarray, labels: list[str]) -> pd.DataFrame:
        return prediction_frame(examples, probs, labels)

    def save(self, model, tokenizer, folder: Path, meta: dict, cfg: FitConfig) -> None:
        from ftkit.models.pooler import model_pooling

        with quiet_transformers():
            model.save_pretrained(folder)  # safetensors
            tokenizer.save_pretrained(folder)
        meta = {"task": self.name, **meta, "text_pooling": model_pooling(model), "text_column": cfg.data.text_column,
                "text_columns": list(cfg.data.text_columns), "label_column": cfg.data.label_column}
        (folder / "ftkit.json").write_text(json.dumps(meta, indent=2))

    def predictor(self, folder: Path) -> "TextClassifier":
        return TextClassifier(folder)

    def scan_file(self, split: str, path: str, d) -> list:
        """`ftkit doctor`: every empty text, missing label and mixed label spelling of one file."""
        from ftkit.data.doctor_schema import scan_table

        return scan_table(split, path, d.text_column, d)

    def read_reference(self, path: str, label_column: Optional[str], d) -> TextExamples:
        """Retention's reference data, read with the training data's columns."""
        return read_examples(path, d.text_column, label_column, d.drop_empty)


# Texts per forward pass at prediction, longest first: on a CPU smaller batches carry less padding
# (MiniLM-L6, 64 reviews, 2 cores: 108/s at 64, 145 at 32, 162 at 16, 165 at 8, 135 at 4).
PREDICT_BATCH = 16


class TextClassifier:
    """A saved text classifier: plain transformers weights plus ftkit.json (labels, max length)."""

    def __init__(self, folder: Path):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from ftkit.models.pooler import apply_pooling

        self.meta = json.loads((folder / "ftkit.json").read_text())
        self.labels: list[str] = self.meta["labels"]
        pooling = saved_pooling(self.meta)  # the pooling it was trained with (None: the architecture's)
        with quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            if self.meta.get("adapter"):
                build = lambda source, labels, remote: build_classifier(source, labels, remote, pooling)  # noqa: E731
                self.model = load_adapter(folder, self.meta, build)
            else:
                self.model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32)
                apply_pooling(self.model, pooling)
        self.model.eval()

    def encode(self, examples: TextExamples) -> TextEncoded:
        labels = self.labels if examples.labels is not None else None
        if labels is not None:
            check_known(examples, labels)
        return encode(examples, self.tokenizer, self.meta["max_length"], labels)

    def predict_proba(self, examples: TextExamples, batch_size: int = PREDICT_BATCH) -> np.ndarray:
        return self._scaled_probs(self.encode(examples), batch_size)

    def _scaled_probs(self, data: TextEncoded, batch_size: int = PREDICT_BATCH) -> np.ndarray:
        probs = predict_proba(self.model, data, batch_size, self.meta.get("eval_precision", "fp32"))
        return apply_temperature(probs, self.meta.get("temperature"))  # fitted in fit with eval.calibrate

    def evaluate(self, examples: TextExamples) -> tuple[dict, np.ndarray]:
        data = self.encode(examples)
        probs = self._scaled_probs(data)
        return classification_metrics(probs, data.labels, self.labels), probs

    @property
    def text_columns(self) -> tuple[str, ...]:
        return tuple(self.meta.get("text_columns") or split_columns(self.meta["text_column"]))

    def inputs(self, items: list, source: str) -> TextExamples:
        """predict()'s inputs as examples: texts, or for a model of several text columns a list of
        texts or an object keyed by column per input (a bad one is named as source[i])."""
        rows = list(range(1, len(items) + 1))
        columns = self.text_columns
        if len(columns) == 1:
            return TextExamples([str(t) for t in items], None, source, rows)
        segments = [input_segments(x, columns, f"{source}[{i}]") for i, x in enumerate(items)]
        return TextExamples([joined(s) for s in segments], None, source, rows, segments=segments)

    def predict(self, texts: list) -> list[dict]:
        probs = self.predict_proba(self.inputs(list(texts), "inputs"))
        return [{"label": self.labels[int(p.argmax())], "score": float(p.max()),
                 "probabilities": {name: float(v) for name, v in zip(self.labels, p)}} for p in probs]

    def frame(self, examples: TextExamples, probs: np.ndarray) -> pd.DataFrame:
        return prediction_frame(examples, probs, self.labels)

    def export(self, folder: Path) -> None:
        export_model(self.model, self.tokenizer, self.meta, folder)

    def read(self, path: str, columns: Optional[dict] = None, labelled: bool = True) -> TextExamples:
        columns = columns or {}
        label = (columns.get("label") or self.meta["label_column"]) if labelled else None
        return read_examples(path, columns.get("text") or self.meta["text_column"], label, drop_empty=False)

    def predict_frame(self, data: Optional[str], texts: Optional[list[str]], column: Optional[str]) -> pd.DataFrame:
        """The input's own columns (so results join back) plus predicted, score, prob_<label>."""
        if data is not None:
            table = read_table(data)
            examples = examples_from(table, column or self.meta["text_column"], None, drop_empty=False)
            base = table.frame.reset_index(drop=True)
        else:
            if len(self.text_columns) > 1:
                raise DataError(f"--text: this model reads {len(self.text_columns)} text columns "
                                f"({', '.join(self.text_columns)}); predict a file with them: --data FILE")
            examples = self.inputs(list(texts), "--text")
            base = pd.DataFrame({"text": examples.texts})
        scored = self.frame(examples, self.predict_proba(examples)).drop(columns=["row", "text"])
        return pd.concat([base, scored.reset_index(drop=True)], axis=1)


# ---------------------------------------------------------------- multi-label

def label_set_reader(d):
    """(table, column) -> each row's label set, read as data.label_sep / data.allow_empty_labels say."""
    return lambda table, column: table_label_sets(table, column, d.label_sep, d.allow_empty_labels)


def encode_sets(examples: TextExamples, tokenizer, max_length: int, labels: list[str]) -> TextEncoded:
    """Token ids as for one label; `labels` become (n, labels) 0/1 targets."""
    return set_targets(encode(examples, tokenizer, max_length, None), examples.labels, labels)


@TASKS.register("text-multilabel", "a set of labels per text (tags, topics): --label-sep \"|\" or a JSON list column")
class TextMultiLabel(MultiLabelEvaluation, TextClassification):
    name = "text-multilabel"
    capabilities = replace(MULTILABEL, schema_scan=True, text_max_length=True, truncation_check=True)
    # MiniLM-L6 on wnut-tags (800 tweets, 3 epochs): micro-F1 0.433 at 2e-4 vs 0.312 at 5e-5; BCE's
    # gradient on rare positives is small, and 5e-5 left most labels at their base rate
    body_lr = 2e-4
    stratify = "sets"  # iterative stratification of the label sets
    check_known = staticmethod(check_known_sets)
    read_reference = None  # retention needs one class per input of the original task

    def label_reader(self, d):
        return label_set_reader(d)

    def label_names(self, train: TextExamples, column: str) -> list[str]:
        labels = set_vocabulary(train.labels)
        if not labels:
            raise DataError(f"{train.source}: column {column!r} holds no label at all")
        return labels

    def build(self, cfg: FitConfig, source: ModelSource, labels: list[str]):
        model, tokenizer = build_classifier(source, labels, cfg.model.trust_remote_code, head_pooling(cfg, source))
        model.config.problem_type = "multi_label_classification"  # plain transformers: sigmoid + BCE
        return model, tokenizer

    def encode(self, examples: TextExamples, tokenizer, cfg: FitConfig, labels: list[str]) -> TextEncoded:
        return encode_sets(examples, tokenizer, cfg.data.max_length, labels)

    def evaluate(self, model, data: TextEncoded, labels: list[str], batch_size: int, precision: str):
        return self.scored(longest_first_proba(model, data, batch_size, precision, multi_label=True), data.labels,
                           labels)

    def prediction_frame(self, examples: TextExamples, scores: LabelScores, labels: list[str]) -> pd.DataFrame:
        return set_prediction_frame(examples.rows, "text", examples.texts, examples.labels, scores, labels)

    def save(self, model, tokenizer, folder: Path, meta: dict, cfg: FitConfig) -> None:
        super().save(model, tokenizer, folder, {**meta, "label_sep": cfg.data.label_sep,
                                                 "allow_empty_labels": cfg.data.allow_empty_labels}, cfg)

    def predictor(self, folder: Path) -> "TextMultiLabeler":
        return TextMultiLabeler(folder)


class TextMultiLabeler(TextClassifier):
    """A saved multi-label text model: labels at or above their thresholds (tuned on validation,
    saved in ftkit.json)."""

    def __init__(self, folder: Path):
        super().__init__(folder)
        self.thresholds = saved_thresholds(self.meta)

    def encode(self, examples: TextExamples) -> TextEncoded:
        if examples.labels is not None:
            check_known_sets(examples, self.labels)
        return encode_sets(examples, self.tokenizer, self.meta["max_length"], self.labels)

    def _scaled_probs(self, data: TextEncoded, batch_size: int = PREDICT_BATCH) -> LabelScores:
        probs = longest_first_proba(self.model, data, batch_size, self.meta.get("eval_precision", "fp32"),
                                    multi_label=True)
        return LabelScores(probs, self.thresholds)

    def evaluate(self, examples: TextExamples) -> tuple[dict, LabelScores]:
        data = self.encode(examples)
        scores = self._scaled_probs(data)
        return MultiLabelEvaluation().at_thresholds(data, scores, self.labels, self.thresholds)

    def predict(self, texts: list) -> list[dict]:
        return predictions(self.predict_proba(self.inputs(list(texts), "inputs")), self.labels)

    def frame(self, examples: TextExamples, scores: LabelScores) -> pd.DataFrame:
        return set_prediction_frame(examples.rows, "text", examples.texts, examples.labels, scores, self.labels)

    def read(self, path: str, columns: Optional[dict] = None, labelled: bool = True) -> TextExamples:
        columns = columns or {}
        label = (columns.get("label") or self.meta["label_column"]) if labelled else None
        reader = lambda table, column: table_label_sets(table, column, self.meta.get("label_sep"),  # noqa: E731
                                                        self.meta.get("allow_empty_labels", False))
        return read_examples(path, columns.get("text") or self.meta["text_column"], label, False, reader)


# ---------------------------------------------------------------- regression

@TASKS.register("text-regression", "a number per text (a score, a rating): --label-type number")
class TextRegression(RegressionEvaluation, TextClassification):
    name = "text-regression"
    capabilities = replace(REGRESSION, schema_scan=True, text_max_length=True, truncation_check=True)

    def prepare_data(self, cfg: FitConfig) -> Splits:
        splits = super().prepare_data(cfg)
        splits.numeric_target = True
        return splits

    def encode(self, examples: TextExamples, tokenizer, cfg: FitConfig, labels: list[str]) -> TextEncoded:
        return encode_values(examples, tokenizer, cfg.data.max_length)

    def evaluate(self, model, data: TextEncoded, labels: list[str], batch_size: int, precision: str):
        return self.scored(model, longest_first_proba(model, data, batch_size, precision, raw=True), data.labels)

    def prediction_frame(self, examples: TextExamples, values: np.ndarray, labels: list[str]) -> pd.DataFrame:
        return value_frame(examples.rows, "text", examples.texts, examples.labels, values)

    def save(self, model, tokenizer, folder: Path, meta: dict, cfg: FitConfig) -> None:
        super().save(model, tokenizer, folder, {**meta, "target": target_meta(model), "loss": cfg.train.loss}, cfg)

    def predictor(self, folder: Path) -> "TextRegressor":
        return TextRegressor(folder)


def encode_values(examples: TextExamples, tokenizer, max_length: int) -> TextEncoded:
    """Token ids as for one label; targets as (n,) float32 in their own units."""
    data = encode(examples, tokenizer, max_length, None)
    data.labels = None if examples.labels is None else np.asarray(examples.labels, dtype=np.float32)
    data.n_classes = 1
    return data


class TextRegressor(TextClassifier):
    """A saved text regression model: the standardised output mapped back with ftkit.json's target
    mean and std."""

    def encode(self, examples: TextExamples) -> TextEncoded:
        return encode_values(examples, self.tokenizer, self.meta["max_length"])

    def _scaled_probs(self, data: TextEncoded, batch_size: int = PREDICT_BATCH) -> np.ndarray:
        outputs = longest_first_proba(self.model, data, batch_size, self.meta.get("eval_precision", "fp32"), raw=True)
        return values_of(outputs, self.meta)

    def evaluate(self, examples: TextExamples) -> tuple[dict, np.ndarray]:
        data = self.encode(examples)
        values = self._scaled_probs(data)
        return regression_metrics(values, data.labels, self.meta["target"]["std"]), values

    def predict(self, texts: list) -> list[dict]:
        return [{"value": float(v)} for v in self.predict_proba(self.inputs(list(texts), "inputs"))]

    def frame(self, examples: TextExamples, values: np.ndarray) -> pd.DataFrame:
        return value_frame(examples.rows, "text", examples.texts, examples.labels, values)

    def read(self, path: str, columns: Optional[dict] = None, labelled: bool = True) -> TextExamples:
        columns = columns or {}
        label = (columns.get("label") or self.meta["label_column"]) if labelled else None
        return read_examples(path, columns.get("text") or self.meta["text_column"], label, False, table_targets)
