"""Token classification (named entities): one tag per word, BIO or BIOES.

Words are split into sub-tokens by the model's tokenizer; the first sub-token of each word
carries the word's tag and the others are ignored by the loss (or, with
``data.label_all_tokens``, carry it too, B- turned into I-). Sentences longer than
``data.max_length`` are cut into overlapping windows (``data.stride`` sub-tokens of overlap)
instead of being truncated; a word seen by several windows gets the average of their
probabilities. Metrics are entity-level (seqeval), plus word-level accuracy.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ftkit.config import FitConfig
from ftkit.data.readers import read_utf8
from ftkit.data.splits import split_parts, split_seed
from ftkit.errors import ConfigError, DataError
from ftkit.lazy import F, inference_mode, torch  # loaded at first use: data is read and checked without it
from ftkit.models.loading import ModelSource, hub_failure, quiet_transformers
from ftkit.tasks import TASKS
from ftkit.tasks.base import Capabilities, Splits, TaskBase

log = logging.getLogger(__name__)

IGNORE = -100  # label of positions the loss skips
JSONL = (".jsonl", ".ndjson", ".json")
PREFIXES = {"B", "I", "E", "S"}


@dataclass
class Sentences:
    tokens: list[list[str]]
    tags: Optional[list[list[str]]]  # None for unlabelled data (predict)
    source: str
    rows: list[int]  # line of each sentence's first token (CoNLL) or its JSONL line

    unit = "line"

    def where(self, i: int) -> str:
        return f"{self.source} line {self.rows[i]}"

    def subset(self, keep: list[int]) -> "Sentences":
        tags = None if self.tags is None else [self.tags[i] for i in keep]
        return Sentences([self.tokens[i] for i in keep], tags, self.source, [self.rows[i] for i in keep])

    def __len__(self) -> int:
        return len(self.tokens)


# ---------------------------------------------------------------- reading and validation

def read_sentences(path: str, tokens_key: str = "tokens", tags_key: Optional[str] = "tags") -> Sentences:
    """CoNLL (token ... tag per line) or JSONL ({tokens: [...], tags: [...]}); tags_key None:
    tokens only (prediction)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    if p.suffix.lower() in JSONL:
        sentences = _read_jsonl(p, tokens_key, tags_key)
    else:
        sentences = _read_conll(p, tags_key is not None)
    if not len(sentences):
        raise DataError(f"{p}: no sentences found (CoNLL: one token per line, blank line between sentences)")
    return sentences


def _read_conll(path: Path, need_tags: bool) -> Sentences:
    tokens, tags, rows = [], [], []
    words, labels, first, width = [], [], 0, None
    with io.StringIO(read_utf8(path), newline=None) as f:  # lines end at \n, \r\n or \r, as open() splits them
        for number, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.startswith("-DOCSTART-"):
                if words:
                    tokens.append(words), tags.append(labels), rows.append(first)
                words, labels = [], []
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            fields = [x.strip() for x in fields]
            width = width or len(fields)
            if len(fields) != width:
                raise DataError(f"{path} line {number}: {len(fields)} fields, but the file's first token line "
                                f"has {width}; every line needs 'token ... tag' with the same columns")
            if need_tags and width < 2:
                raise DataError(f"{path} line {number}: no tag column; CoNLL lines are 'token<TAB>tag'")
            if not words:
                first = number
            words.append(fields[0])
            labels.append(fields[-1])
    if words:
        tokens.append(words), tags.append(labels), rows.append(first)
    return Sentences(tokens, tags if need_tags else None, str(path), rows)


def _read_jsonl(path: Path, tokens_key: str, tags_key: Optional[str]) -> Sentences:
    tokens, tags, rows = [], [], []
    with io.StringIO(read_utf8(path), newline=None) as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as err:
                raise DataError(f"{path} line {number}: not valid JSON ({err.msg})") from None
            except (ValueError, RecursionError):  # an integer of over 4300 digits; nesting too deep
                raise DataError(f"{path} line {number}: not valid JSON (a number too long or nesting too deep)") from None
            words = _string_list(obj, tokens_key, path, number)
            if not words:
                raise DataError(f"{path} line {number}: {tokens_key!r} is an empty list; remove the line")
            if tags_key is not None:
                labels = _string_list(obj, tags_key, path, number)
                if len(labels) != len(words):
                    raise DataError(f"{path} line {number}: {len(words)} tokens but {len(labels)} tags; "
                                    "each token needs exactly one tag")
                tags.append(labels)
            tokens.append(words)
            rows.append(number)
    return Sentences(tokens, tags if tags_key is not None else None, str(path), rows)


def _string_list(obj, key: str, path: Path, number: int) -> list[str]:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{path} line {number}: expected {key!r} to be a list of strings "
                        "(set data.tokens_column / data.tags_column for other keys)")
    return value


def tag_scheme(sentences: Sentences) -> str:
    """'BIOES' when E-/S- tags occur, else 'BIO'; any other tag is an error naming its line."""
    prefixes = set()
    for i, tags in enumerate(sentences.tags or []):
        for tag in tags:
            if tag == "O":
                continue
            prefix, dash, kind = tag.partition("-")
            if not dash or prefix not in PREFIXES or not kind:
                raise DataError(f"{sentences.where(i)}: tag {tag!r} is not in a BIO or BIOES scheme "
                                "(expected O, B-TYPE, I-TYPE, E-TYPE or S-TYPE)")
            prefixes.add(prefix)
    return "BIOES" if prefixes & {"E", "S"} else "BIO"


def tag_order(sentences: Sentences) -> list[str]:
    """O first, then by entity type and B, I, E, S."""
    found = {t for tags in sentences.tags for t in tags} | {"O"}
    rank = {"B": 0, "I": 1, "E": 2, "S": 3}
    return ["O"] + sorted(found - {"O"}, key=lambda t: (t[2:], rank[t[0]]))


def check_known(sentences: Sentences, known: list[str]) -> None:
    known_set = set(known)
    for i, tags in enumerate(sentences.tags or []):
        for tag in tags:
            if tag not in known_set:
                raise DataError(f"{sentences.where(i)}: tag {tag!r} never occurs in the training data")


# ---------------------------------------------------------------- model inputs

class TokenEncoded:
    """Windows of sub-token ids; `words[w][p]` is the word index whose first sub-token sits at
    position p of window w (-1 elsewhere), `labels[w][p]` its tag id (IGNORE elsewhere)."""

    def __init__(self, ids, words, labels, sentence, n_words, pad_id: int, n_classes: int, tags=None):
        self.ids, self.words, self.labels = ids, words, labels
        self.tags = tags  # gold tags per sentence (word level), None when unlabelled
        self.sentence = np.asarray(sentence, dtype=np.int64)  # (windows,) sentence of each window
        self.n_words = n_words  # words per sentence
        self.pad_id, self.n_classes = pad_id, n_classes
        self.lengths = np.array([len(x) for x in ids], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def fingerprint(self) -> str:
        digest = hashlib.blake2b(self.lengths.tobytes(), digest_size=16)
        digest.update(np.concatenate(self.ids).tobytes() if self.ids else b"")
        return digest.hexdigest()

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        width = int(self.lengths[indices].max())
        input_ids = np.full((len(indices), width), self.pad_id, dtype=np.int64)  # (batch, seq)
        mask = np.zeros((len(indices), width), dtype=np.int64)
        labels = np.full((len(indices), width), IGNORE, dtype=np.int64)
        for row, i in enumerate(indices):
            n = self.lengths[i]
            input_ids[row, :n], mask[row, :n] = self.ids[i], 1
            if self.labels is not None:
                labels[row, :n] = self.labels[i]
        out = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}
        if self.labels is not None:
            out["labels"] = torch.from_numpy(labels)
        return out


def encode(sentences: Sentences, tokenizer, max_length: int, stride: int, labels: Optional[list[str]],
           label_all: bool = False) -> TokenEncoded:
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("token classification needs a fast (Rust) tokenizer to align words and sub-tokens")
    stride = min(stride, max_length // 2)
    enc = tokenizer(sentences.tokens, is_split_into_words=True, truncation=True, max_length=max_length,
                    stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True)
    index = {t: i for i, t in enumerate(labels or [])}
    with_labels = labels is not None and sentences.tags is not None
    ids, words, tag_ids = [], [], []
    for w, sample in enumerate(enc["overflow_to_sample_mapping"]):
        word_ids, offsets = enc.word_ids(w), enc["offset_mapping"][w]
        first = np.full(len(word_ids), -1, dtype=np.int64)
        lab = np.full(len(word_ids), IGNORE, dtype=np.int64)
        for pos, word in enumerate(word_ids):
            if word is None:
                continue
            starts = offsets[pos][0] == 0 and (pos == 0 or word_ids[pos - 1] != word)
            if starts:
                first[pos] = word
            if with_labels and (starts or label_all):
                tag = sentences.tags[sample][word]
                lab[pos] = index[tag if starts or not tag.startswith("B-") else "I-" + tag[2:]]
        ids.append(np.asarray(enc["input_ids"][w], dtype=np.int64))
        words.append(first)
        tag_ids.append(lab)
    return TokenEncoded(ids, words, tag_ids if with_labels else None, enc["overflow_to_sample_mapping"],
                        [len(t) for t in sentences.tokens], tokenizer.pad_token_id, len(labels or []),
                        sentences.tags if with_labels else None)


@inference_mode
def word_probabilities(model, data: TokenEncoded, batch_size: int, precision: str) -> tuple[list[np.ndarray], float]:
    """Per sentence (words, tags) probabilities, averaged over the windows that saw each word,
    and the mean cross-entropy over labelled positions (nan without labels)."""
    from ftkit.training.device import autocast

    model.eval()
    device = next(model.parameters()).device
    sums = [np.zeros((n, model.config.num_labels), dtype=np.float32) for n in data.n_words]
    seen = [np.zeros(n, dtype=np.float32) for n in data.n_words]
    loss_sum, loss_n = 0.0, 0
    order = np.argsort(-data.lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = {k: v.to(device) for k, v in data.batch(idx).items()}
        with autocast(precision, device):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        logits = logits.float()  # (batch, seq, tags)
        if "labels" in batch:
            loss_sum += F.cross_entropy(logits.transpose(1, 2), batch["labels"], ignore_index=IGNORE,
                                        reduction="sum").item()
            loss_n += int((batch["labels"] != IGNORE).sum())
        probs = torch.softmax(logits, dim=-1).cpu().numpy()
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


def ner_metrics(gold: list[list[str]], pred: list[list[str]], scheme: str, loss: float) -> dict:
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOBES

    strict = {"mode": "strict", "scheme": IOBES} if scheme == "BIOES" else {}
    report = classification_report(gold, pred, output_dict=True, zero_division=0, **strict)
    words = sum(len(g) for g in gold)
    correct = sum(a == b for g, p in zip(gold, pred) for a, b in zip(g, p))
    per_type = {k: {"precision": float(v["precision"]), "recall": float(v["recall"]), "f1": float(v["f1-score"]),
                    "support": int(v["support"])}
                for k, v in report.items() if not k.endswith(" avg")}
    return {
        "f1": float(f1_score(gold, pred, zero_division=0, **strict)),
        "precision": float(precision_score(gold, pred, zero_division=0, **strict)),
        "recall": float(recall_score(gold, pred, zero_division=0, **strict)),
        "accuracy": correct / max(words, 1), "loss": float(loss), "n": len(gold), "words": words,
        "per_type": per_type,
    }


def entities(tokens: list[str], tags: list[str], probs: Optional[np.ndarray] = None,
             starts: Optional[list[int]] = None, text: Optional[str] = None) -> list[dict]:
    """Entity spans: text, type, token span [start, end) and character span [start, end).
    `starts`: character offset of each token in `text`, the original input (default: tokens
    joined by single spaces)."""
    from seqeval.metrics.sequence_labeling import get_entities

    if starts is None:
        starts = list(np.cumsum([0] + [len(t) + 1 for t in tokens[:-1]]))
    out = []
    for kind, first, last in get_entities(list(tags)):
        item = {"text": " ".join(tokens[first:last + 1]), "type": kind, "start_token": first,
                "end_token": last + 1, "start_char": int(starts[first]),
                "end_char": int(starts[last] + len(tokens[last]))}
        if text is not None:
            item["text"] = text[item["start_char"]:item["end_char"]]
        if probs is not None:
            item["score"] = round(float(probs[first:last + 1].max(axis=1).mean()), 4)
        out.append(item)
    return out


WORD = re.compile(r"https?://\S+|[@#]?\w+(?:['’\-.]\w+)*|[^\w\s]")


def split_words(text: str) -> tuple[list[str], list[int]]:
    """Words and punctuation of raw text with their character offsets (URLs, @user and #tag
    stay whole, as in tweet NER data)."""
    found = list(WORD.finditer(text))
    return [m.group() for m in found], [m.start() for m in found]


def prediction_frame(sentences: Sentences, outputs: list[np.ndarray], labels: list[str]) -> pd.DataFrame:
    rows = []
    for i, probs in enumerate(outputs):
        tokens, pred = sentences.tokens[i], [labels[j] for j in probs.argmax(axis=1)]
        row = {"row": sentences.rows[i], "tokens": " ".join(tokens)}
        if sentences.tags is not None:
            row["tags"] = " ".join(sentences.tags[i])
        row["predicted"] = " ".join(pred)
        row["entities"] = json.dumps(entities(tokens, pred, probs), ensure_ascii=False)
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the task

@TASKS.register("token-classification", "a tag per word: named entities (BIO / BIOES), CoNLL or JSONL")
class TokenClassification(TaskBase):
    name = "token-classification"
    default_metric = "f1"
    metrics = ("f1", "precision", "recall", "accuracy", "loss")
    capabilities = Capabilities(schema_scan=True, text_max_length=True, label_smoothing=False)
    input_kind = "words"

    def prepare_data(self, cfg: FitConfig) -> Splits:
        d = cfg.data
        if not d.train:
            raise ConfigError("no training data: pass --train PATH (CoNLL or JSONL with tokens + tags)")
        read = lambda p: read_sentences(p, d.tokens_column, d.tags_column)  # noqa: E731
        train = read(d.train)
        scheme = tag_scheme(train)
        seed = split_seed(cfg)
        record = {"seed": seed, "train_source": train.source, "scheme": scheme}
        train, validation, test = split_parts(train, read, d, seed, record, stratify=False)
        labels = tag_order(train)
        if len(labels) < 2:
            raise DataError(f"{train.source}: every tag is O; there are no entities to learn")
        for part in (validation, test):
            if part is not None:
                tag_scheme(part)
                check_known(part, labels)
        for name, part in (("train", train), ("validation", validation), ("test", test)):
            if part is not None:
                record[name] = {"source": part.source, "n": len(part), "lines": part.rows}
        return Splits(train, validation, test, labels, record)

    def build(self, cfg: FitConfig, source: ModelSource, labels: list[str]):
        return build_tagger(source, labels, cfg.model.trust_remote_code)

    def encode(self, sentences: Sentences, tokenizer, cfg: FitConfig, labels: list[str]) -> TokenEncoded:
        return encode(sentences, tokenizer, cfg.data.max_length, cfg.data.stride, labels, cfg.data.label_all_tokens)

    def make_loss(self, cfg: FitConfig, train: TokenEncoded):
        criterion = self.criterion(cfg, train)

        def loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            return criterion(logits, batch["labels"])

        return loss

    def criterion(self, cfg: FitConfig, train: TokenEncoded):
        weights = None
        if cfg.train.class_weights == "auto":
            from ftkit.tasks.common import class_weights
            tags = np.concatenate([x[x != IGNORE] for x in train.labels])
            weights = class_weights(tags, train.n_classes)
        smoothing = cfg.train.label_smoothing

        def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            w = None if weights is None else weights.to(logits.device)
            return F.cross_entropy(logits.float().transpose(1, 2), labels, weight=w, ignore_index=IGNORE,
                                   label_smoothing=smoothing)

        return loss

    def evaluate(self, model, data: TokenEncoded, labels: list[str], batch_size: int, precision: str):
        probs, loss = word_probabilities(model, data, batch_size, precision)
        pred = [[labels[j] for j in p.argmax(axis=1)] for p in probs]
        scheme = "BIOES" if any(t[0] in "ES" for t in labels if t != "O") else "BIO"
        return ner_metrics(data.tags, pred, scheme, loss), probs

    def confidence_intervals(self, data: TokenEncoded, probs, labels: list[str], n_boot: int, level: float,
                             seed: int) -> dict:
        """Bootstrap intervals of entity F1 / precision / recall, resampling whole sentences."""
        from ftkit.evaluation.bootstrap import ner_ci

        pred = [[labels[j] for j in p.argmax(axis=1)] for p in probs]
        scheme = "BIOES" if any(t[0] in "ES" for t in labels if t != "O") else "BIO"
        return ner_ci(data.tags, pred, scheme, n_boot, level, seed)

    def prediction_frame(self, sentences: Sentences, outputs, labels: list[str]) -> pd.DataFrame:
        return prediction_frame(sentences, outputs, labels)

    def save(self, model, tokenizer, folder: Path, meta: dict, cfg: FitConfig) -> None:
        with quiet_transformers():
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
        d = cfg.data
        meta = {"task": self.name, **meta, "stride": d.stride, "label_all_tokens": d.label_all_tokens,
                "tokens_column": d.tokens_column, "tags_column": d.tags_column}
        (folder / "ftkit.json").write_text(json.dumps(meta, indent=2))

    def predictor(self, folder: Path) -> "Tagger":
        return Tagger(folder)

    def scan_file(self, split: str, path: str, d) -> list:
        """`ftkit doctor`: a CoNLL/JSONL file is read as `fit` reads it (its error names the line)."""
        read_sentences(path, d.tokens_column, d.tags_column)
        return []


def build_tagger(source: ModelSource, labels: list[str], remote: bool):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    try:
        with quiet_transformers():
            extra = {"add_prefix_space": True} if _needs_prefix_space(source) else {}
            tokenizer = AutoTokenizer.from_pretrained(source.location, trust_remote_code=remote, **extra)
            model = AutoModelForTokenClassification.from_pretrained(
                source.location, num_labels=len(labels), id2label=dict(enumerate(labels)),
                label2id={n: i for i, n in enumerate(labels)}, ignore_mismatched_sizes=True,
                dtype=torch.float32, trust_remote_code=remote)
    except OSError as err:
        raise hub_failure(source, err) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _needs_prefix_space(source: ModelSource) -> bool:
    # Byte-level BPE tokenizers (RoBERTa, GPT-2) only accept pre-split words with this flag.
    try:
        config = json.loads((Path(source.location) / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return config.get("model_type") in {"roberta", "gpt2", "longformer", "deberta", "bart"}


class Tagger:
    """A saved tagger: transformers weights + ftkit.json (tags, scheme, windowing)."""

    def __init__(self, folder: Path):
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        self.meta = json.loads((folder / "ftkit.json").read_text())
        self.labels: list[str] = self.meta["labels"]
        with quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            if self.meta.get("adapter"):
                from ftkit.tasks.common import load_adapter
                self.model = load_adapter(folder, self.meta, build_tagger)
            else:
                self.model = AutoModelForTokenClassification.from_pretrained(folder, dtype=torch.float32)
        self.model.eval()

    def read(self, path: str, columns: Optional[dict] = None, labelled: bool = True) -> Sentences:
        columns = columns or {}
        return read_sentences(path, columns.get("tokens") or self.meta["tokens_column"],
                              (columns.get("tags") or self.meta["tags_column"]) if labelled else None)

    def encode(self, sentences: Sentences) -> TokenEncoded:
        labels = self.labels if sentences.tags is not None else None
        if labels is not None:
            check_known(sentences, labels)
        return encode(sentences, self.tokenizer, self.meta["max_length"], self.meta["stride"], labels,
                      self.meta.get("label_all_tokens", False))

    def evaluate(self, sentences: Sentences) -> tuple[dict, list[np.ndarray]]:
        return TokenClassification().evaluate(self.model, self.encode(sentences), self.labels, 64,
                                              self.meta.get("eval_precision", "fp32"))

    def word_probabilities(self, sentences: Sentences) -> list[np.ndarray]:
        probs, _ = word_probabilities(self.model, self.encode(sentences), 64, self.meta.get("eval_precision", "fp32"))
        return probs

    def predict(self, inputs: list) -> list[dict]:
        """Each input: raw text (split into words here) or a list of tokens."""
        split = [split_words(x) if isinstance(x, str) else (list(x), None) for x in inputs]
        sentences = Sentences([s[0] for s in split], None, "<input>", list(range(1, len(split) + 1)))
        keep = [i for i, t in enumerate(sentences.tokens) if t]
        probs = dict(zip(keep, self.word_probabilities(sentences.subset(keep)))) if keep else {}
        out = []
        for i, (tokens, starts) in enumerate(split):
            p = probs.get(i, np.zeros((0, len(self.labels))))
            tags = [self.labels[j] for j in p.argmax(axis=1)] if len(p) else []
            raw = inputs[i] if isinstance(inputs[i], str) else None
            out.append({"tokens": tokens, "tags": tags, "entities": entities(tokens, tags, p, starts, raw)})
        return out

    def frame(self, sentences: Sentences, outputs) -> pd.DataFrame:
        return prediction_frame(sentences, outputs, self.labels)

    def predict_frame(self, data: Optional[str], texts: Optional[list[str]], column: Optional[str]) -> pd.DataFrame:
        if data is not None:
            sentences = self.read(data, {"tokens": column}, labelled=False)
            return self.frame(sentences, self.word_probabilities(sentences))
        results = self.predict(texts)
        return pd.DataFrame({"text": texts, "tokens": [" ".join(r["tokens"]) for r in results],
                             "predicted": [" ".join(r["tags"]) for r in results],
                             "entities": [json.dumps(r["entities"], ensure_ascii=False) for r in results]})

    def export(self, folder: Path) -> None:
        from ftkit.tasks.common import export_model
        export_model(self.model, self.tokenizer, self.meta, folder)

