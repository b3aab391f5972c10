"""ONNX predictors for text classification and NER: the task's TextClassifier / Tagger with the
forward pass on onnxruntime and the tokenizer on the Rust `tokenizers` library (no torch)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ftkit.evaluation.calibration import apply_temperature
from ftkit.evaluation.multilabel_metrics import LabelScores
from ftkit.onnxrt.runtime import NotExportable, longest_first_probs, onnx_session, pad_ids, read_meta, softmax
from ftkit.onnxrt.tokenizer import load_tokenizer
from ftkit.tasks import text_classification
from ftkit.tasks.multilabel import saved_thresholds
from ftkit.tasks.regression import values_of
from ftkit.tasks.text_classification import TextClassifier, TextEncoded, TextMultiLabeler, TextRegressor
from ftkit.tasks.token_classification import IGNORE, Sentences, Tagger, TokenEncoded, ner_metrics

TEXT_BATCH = getattr(text_classification, "PREDICT_BATCH", 64)  # the torch predictor's default batch


class OnnxText(NotExportable):
    """What every ONNX text predictor holds (the folder's meta and labels, the Rust tokenizer, one
    session) and its forward pass: the graph's logits for some rows of an encoded split."""

    def __init__(self, folder: Path, threads: Optional[int] = None):
        self.folder = folder
        self.meta = read_meta(folder)
        self.labels: list[str] = self.meta["labels"]
        self.tokenizer = load_tokenizer(folder, self.meta["onnx"]["tokenizer"])
        self.session = onnx_session(folder, self.meta, threads)

    def logits_of(self, data: TextEncoded) -> Callable[[np.ndarray], np.ndarray]:
        def logits(idx: np.ndarray) -> np.ndarray:
            types = None if data.types is None else [data.types[i] for i in idx]  # text pairs
            return self.session.run(pad_ids([data.ids[i] for i in idx], data.pad_id, types))[0]

        return logits


class OnnxTextClassifier(OnnxText, TextClassifier):
    """TextClassifier on onnxruntime: same encode (truncation at meta["max_length"]), batches
    (longest first), softmax and temperature."""

    def _scaled_probs(self, data: TextEncoded, batch_size: int = TEXT_BATCH) -> np.ndarray:
        probs = longest_first_probs(self.logits_of(data), data.lengths, batch_size, len(self.labels))
        return apply_temperature(probs, self.meta.get("temperature"))  # fitted in fit with eval.calibrate


class OnnxTextMultiLabeler(OnnxText, TextMultiLabeler):
    """TextMultiLabeler on onnxruntime: the graph's logits, one sigmoid per label, the saved thresholds."""

    def __init__(self, folder: Path, threads: Optional[int] = None):
        super().__init__(folder, threads)
        self.thresholds = saved_thresholds(self.meta)

    def _scaled_probs(self, data: TextEncoded, batch_size: int = TEXT_BATCH) -> LabelScores:
        return LabelScores(longest_first_probs(self.logits_of(data), data.lengths, batch_size, len(self.labels), multi_label=True),
                           self.thresholds)


class OnnxTextRegressor(OnnxText, TextRegressor):
    """TextRegressor on onnxruntime: the graph outputs the standardised value, mapped back with the
    target mean and std of ftkit.json."""

    def _scaled_probs(self, data: TextEncoded, batch_size: int = TEXT_BATCH) -> np.ndarray:
        return values_of(longest_first_probs(self.logits_of(data), data.lengths, batch_size, 1, raw=True), self.meta)


class OnnxTagger(OnnxText, Tagger):
    """Tagger on onnxruntime: same windows (max_length, stride), first-sub-token alignment and
    per-word average over the windows that saw a word."""

    def word_probabilities(self, sentences: Sentences) -> list[np.ndarray]:
        return self._word_probabilities(self.encode(sentences))[0]

    def evaluate(self, sentences: Sentences) -> tuple[dict, list[np.ndarray]]:
        """As TokenClassification.evaluate: entity metrics (seqeval, the labels' scheme) + loss."""
        data = self.encode(sentences)
        probs, loss = self._word_probabilities(data)
        pred = [[self.labels[j] for j in p.argmax(axis=1)] for p in probs]
        scheme = "BIOES" if any(t[0] in "ES" for t in self.labels if t != "O") else "BIO"
        return ner_metrics(data.tags, pred, scheme, loss), probs

    def _word_probabilities(self, data: TokenEncoded, batch_size: int = 64) -> tuple[list[np.ndarray], float]:
        """token_classification.word_probabilities on onnxruntime: per sentence (words, tags)
        probabilities and the mean cross-entropy over labelled positions (nan without labels)."""
        n_tags = len(self.labels)
        sums = [np.zeros((n, n_tags), dtype=np.float32) for n in data.n_words]
        seen = [np.zeros(n, dtype=np.float32) for n in data.n_words]
        loss_sum, loss_n = 0.0, 0
        order = np.argsort(-data.lengths, kind="stable")
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            logits = self.session.run(pad_ids([data.ids[i] for i in idx], data.pad_id))[0].astype(np.float32)
            if data.labels is not None:
                s, n = _cross_entropy_sum(logits, [data.labels[i] for i in idx])
                loss_sum, loss_n = loss_sum + s, loss_n + n
            probs = softmax(logits)  # (batch, seq, tags)
            for row, w in enumerate(idx):
                positions = np.nonzero(data.words[w] >= 0)[0]
                s, word = data.sentence[w], data.words[w][positions]
                np.add.at(sums[s], word, probs[row, positions])
                np.add.at(seen[s], word, 1.0)
        out = []
        for total, count in zip(sums, seen):
            p = total / np.maximum(count, 1)[:, None]
            p[count == 0, 0] = 1.0  # a word with no sub-token (e.g. empty) is O
            out.append(p)
        return out, (loss_sum / loss_n if loss_n else float("nan"))


def _cross_entropy_sum(logits: np.ndarray, labels: list[np.ndarray]) -> tuple[float, int]:
    """Summed cross-entropy of the labelled positions of a padded batch, and their count."""
    total, n = 0.0, 0
    for row, lab in enumerate(labels):
        keep = np.nonzero(lab != IGNORE)[0]
        if not len(keep):
            continue
        x = logits[row, keep].astype(np.float64)
        top = x.max(axis=1, keepdims=True)
        log_z = np.log(np.exp(x - top).sum(axis=1)) + top[:, 0]
        total += float((log_z - x[np.arange(len(keep)), lab[keep]]).sum())
        n += len(keep)
    return total, n
