"""Audio classification: one label per clip (spoken language, keyword, speaker, sound event).

Input: a folder with one sub-folder per class, or a CSV/JSONL/Parquet with an audio path column
(`--audio-column`, relative to the table) and a label column (data/audio_data.py). Every clip is
decoded once when read, mixed to mono and resampled to the model's rate; training clips are
augmented on the fly (speed, gain, noise; SpecAugment inside the model).

Models:
- any Whisper folder (e.g. the zoo's `whisper-base`, a WhisperForConditionalGeneration): its
  encoder with a new linear head on ONE vector per clip, the encoder states averaged over the
  frames that hold the clip (not the rest of the 30 s window, which is padding). One vector per
  clip is what the linear-probe feature cache stores, so a probe costs one encoder pass per clip.
  transformers' WhisperForAudioClassification averages all 1,500 frames (a 1 s clip is 1/30 of
  its vector) and projects every frame before pooling, so its head cannot be cached.
- any local Hugging Face audio-classification folder (wav2vec2, HuBERT, WavLM, AST, ...) through
  AutoModelForAudioClassification; a head it already has is kept (model/original_head.safetensors).
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ftkit.config import FitConfig
from ftkit.data.audio import read_audio
from ftkit.data.audio_data import (AudioExamples, check_clips, class_folders, clips_digest, from_table,
                                   loose_clips, model_window_seconds)
from ftkit.data.labels import check_known, label_order
from ftkit.data.splits import split_parts, split_seed
from ftkit.errors import ConfigError, DataError, ModelLoadError
from ftkit.evaluation.calibration import apply_temperature
from ftkit.evaluation.metrics import classification_metrics
from ftkit.lazy import nn, torch  # loaded at first use: clips are read and checked without it
from ftkit.models.loading import ModelSource, hub_failure, original_head_state, quiet_transformers
from ftkit.strategies.groups import head_modules
from ftkit.tasks import TASKS
from ftkit.tasks.base import PerExampleEvaluation, Splits, class_prediction_frame, longest_first_proba

log = logging.getLogger(__name__)

# Clips per forward pass for scoring: a Whisper clip is a 30 s window (whisper-base: ~6 GB of
# activations for 64 clips on a CPU), and more clips per batch buy little speed.
BATCH = 16


# ---------------------------------------------------------------- reading

def read_clips(path: str, audio_column: str, label_column: Optional[str], skip_bad: bool = False,
               max_seconds: Optional[float] = None, allow_outside: bool = False) -> AudioExamples:
    """A folder (one sub-folder per class; flat when unlabelled) or a table of clip paths (inside
    the table's folder unless `allow_outside`); every clip decoded once (check_clips: unreadable,
    silent or too long clips named or skipped)."""
    p = Path(path)
    if p.is_dir():
        examples = class_folders(p, labelled=label_column is not None)
    elif p.is_file():
        examples = from_table(p, audio_column, label_column=label_column, allow_outside=allow_outside)
    else:
        raise DataError(f"{p}: no such file or folder")
    return check_clips(examples, skip_bad, max_seconds)


# ---------------------------------------------------------------- model inputs

@dataclass
class AudioProcessor:
    """The model's feature extractor and what the task needs to know about it."""

    kind: str  # "whisper" (ftkit's WhisperClassifier) or "hf" (AutoModelForAudioClassification)
    features: object  # the Hugging Face feature extractor
    rate: int  # sampling rate the model takes
    max_seconds: Optional[float]  # one forward pass's window (Whisper: 30 s); None: any length
    settings: dict = field(default_factory=dict)  # e.g. SpecAugment, for the record

    def inputs(self, clips: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Whisper: log-mel features padded to its window + the frames holding each clip;
        others: the extractor's own inputs padded to the longest clip of the batch."""
        if self.kind == "whisper":
            enc = self.features(clips, sampling_rate=self.rate, return_attention_mask=True, return_tensors="pt")
            return {"input_features": enc.input_features, "attention_mask": enc.attention_mask}
        return dict(self.features(clips, sampling_rate=self.rate, padding=True, return_tensors="pt"))

    def save_pretrained(self, folder: Path) -> None:
        self.features.save_pretrained(folder)


class AudioEncoded:
    """Clips at the model's rate + class ids; batches become model inputs on the fly so training
    clips can be augmented (`augment`, set by the task's loss for the training split only)."""

    def __init__(self, clips: list[np.ndarray], labels: Optional[np.ndarray], proc: AudioProcessor,
                 n_classes: int, seed: int = 0):
        self.clips, self.labels, self.proc, self.n_classes, self.seed = clips, labels, proc, n_classes, seed
        self.augment = None
        self.lengths = np.array([len(c) for c in clips], dtype=np.int64)  # padding per batch (non-Whisper)

    def __len__(self) -> int:
        return len(self.clips)

    def fingerprint(self) -> str:
        """Hash of the samples and the feature extractor's settings (the feature cache's key)."""
        return clips_digest(self.clips, f"{self.proc.kind}|{self.proc.rate}|{self.proc.features.to_json_string()}")

    def batch(self, indices: np.ndarray, augment: bool = True) -> dict[str, torch.Tensor]:
        clips = [self.clips[i] for i in indices]
        if augment and self.augment is not None:
            # seeded by the batch itself: the same batch gets the same augmentation after a resume
            rng = np.random.default_rng([self.seed, *map(int, indices)])
            clips = [self.augment(c, rng) for c in clips]
        out = self.proc.inputs(clips)
        if self.labels is not None:
            out["labels"] = torch.from_numpy(self.labels[indices])
        return out


def encode(examples: AudioExamples, proc: AudioProcessor, labels: Optional[list[str]], seed: int = 0) -> AudioEncoded:
    clips = [read_audio(p, proc.rate, where=examples.where(i)).samples for i, p in enumerate(examples.paths)]
    ids = None
    if labels is not None and examples.labels is not None:
        index = {name: i for i, name in enumerate(labels)}
        ids = np.array([index[v] for v in examples.labels], dtype=np.int64)
    return AudioEncoded(clips, ids, proc, len(labels or []), seed)


# ---------------------------------------------------------------- the Whisper classifier: tasks/whisper_classifier.py

# ---------------------------------------------------------------- building

def build_audio(source: ModelSource, cfg: FitConfig, labels: list[str]):
    """(model, AudioProcessor) with SpecAugment set as configured; fp32 weights."""
    from transformers import AutoConfig

    from ftkit.data.audio_augment import spec_augment

    remote = cfg.model.trust_remote_code
    try:
        config = AutoConfig.from_pretrained(source.location, trust_remote_code=remote)
        # before the model is built: wav2vec2 creates its mask embedding only when masking is on
        augment = cfg.data.audio_augment
        settings = {"spec_augment": spec_augment(config, augment.enabled and augment.spec_augment)}
        build = _build_whisper if config.model_type == "whisper" else _build_hf
        model, proc = build(source, config, labels, remote)
    except OSError as err:
        raise hub_failure(source, err) from None
    proc.settings = settings
    return model, proc


def _build_whisper(source: ModelSource, config, labels: list[str], remote: bool):
    from transformers import AutoFeatureExtractor, WhisperForAudioClassification

    from ftkit.tasks.whisper_classifier import WhisperClassifier

    # WhisperForAudioClassification loads the encoder of any Whisper checkpoint (its weights
    # under model.encoder.* in a ForConditionalGeneration folder); only the encoder is kept.
    with quiet_transformers():
        whisper, info = WhisperForAudioClassification.from_pretrained(
            source.location, config=config, dtype=torch.float32, output_loading_info=True)
        features = AutoFeatureExtractor.from_pretrained(source.location)
    missing = [k for k in info["missing_keys"] if k.startswith("encoder.")]
    if missing:
        raise ModelLoadError(f"{source.describe()}: no Whisper encoder weights for {missing[:3]}")
    model = WhisperClassifier(whisper.encoder, len(labels))
    window = float(features.chunk_length)
    return model, AudioProcessor("whisper", features, features.sampling_rate, window)


def _build_hf(source: ModelSource, config, labels: list[str], remote: bool):
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification


    config.num_labels = len(labels)
    config.id2label, config.label2id = dict(enumerate(labels)), {n: i for i, n in enumerate(labels)}
    try:
        with quiet_transformers():
            model = AutoModelForAudioClassification.from_pretrained(
                source.location, config=config, ignore_mismatched_sizes=True, dtype=torch.float32,
                trust_remote_code=remote)
            features = AutoFeatureExtractor.from_pretrained(source.location, trust_remote_code=remote)
    except ValueError as err:  # a model type with no audio-classification class
        raise ModelLoadError(f"{source.describe()}: a {config.model_type} model cannot classify audio ({err}); "
                             "use a Whisper folder or an audio encoder (wav2vec2, HuBERT, WavLM, AST, ...)") from None
    model._ftkit_original_head = original_head_state(Path(source.location), head_modules(model))
    model.lora_targets = attention_targets(model)
    return model, AudioProcessor("hf", features, features.sampling_rate, None)


def attention_targets(model: nn.Module) -> Optional[list[str]]:
    """LoRA on the attention query/value projections (PEFT's usual choice), named as the model
    names them; None: PEFT's own default. PEFT knows no audio encoder, and its all-linear
    fallback would also adapt the projector the head trains anyway."""
    leaves = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    for pair in (["q_proj", "v_proj"], ["query", "value"]):
        if set(pair) <= leaves:
            return pair
    return None


def _inner(model) -> nn.Module:
    """The model itself under a PEFT wrapper."""
    try:
        from peft import PeftModel
    except ImportError:
        return model
    return model.get_base_model() if isinstance(model, PeftModel) else model


# ---------------------------------------------------------------- scoring

def predict_proba(model, data: AudioEncoded, batch_size: int, precision: str) -> np.ndarray:
    """(n, classes) probabilities, never augmented; longest clips first (little padding)."""
    batch_size = min(batch_size, BATCH) if data.proc.kind == "whisper" else batch_size
    return longest_first_proba(model, data, batch_size, precision, lambda idx: data.batch(idx, augment=False))


def prediction_frame(examples: AudioExamples, probs: np.ndarray, labels: list[str]) -> pd.DataFrame:
    return class_prediction_frame(examples.rows, "audio", examples.paths, examples.labels, probs, labels)


# ---------------------------------------------------------------- the task

@TASKS.register("audio-classification", "one label per audio clip (a folder per class, or a table of paths)")
class AudioClassification(PerExampleEvaluation):
    name = "audio-classification"
    default_metric = "accuracy"
    metrics = ("accuracy", "macro_f1", "loss")
    # Hugging Face's audio-classification example fine-tunes wav2vec2/HuBERT at 3e-5; Whisper-sized
    # encoders forget at 5e-5 (speech recognition uses 1e-5).
    body_lr = 3e-5
    train_eval_limit = 300  # training clips re-scored at each validation: each is a 30 s Whisper window
    eval_batch_limit = BATCH  # feature passes (linear probe, rank) too
    input_kind = "audio"

    def prepare_data(self, cfg: FitConfig) -> Splits:
        """Read, check and split (stratified, copies on one side); writes nothing. Clips longer than
        the model takes are refused (data.max_audio_seconds, else Whisper's window)."""
        d = cfg.data
        if not d.train:
            raise ConfigError("no training data: pass --train FOLDER (one sub-folder per class) or a CSV/JSONL "
                              "with --audio-column and --label-column")
        limit = d.max_audio_seconds or model_window_seconds(cfg.model.name)
        read = lambda p: read_clips(p, d.audio_column, d.label_column, d.skip_bad, limit,  # noqa: E731
                                    d.allow_outside_paths)
        train = read(d.train)
        labels = label_order(train.labels)
        if len(labels) < 2:
            raise DataError(f"{train.source}: a single class {labels[0]!r}; classification needs at least two")
        seed = split_seed(cfg)
        record = {"seed": seed, "train_source": train.source, "skipped": {"train": train.skipped}}
        train, validation, test = split_parts(train, read, d, seed, record, stratify=True)
        for name, part in (("train", train), ("validation", validation), ("test", test)):
            if part is not None:
                if name != "train":
                    check_known(part, labels)
                record[name] = {"source": part.source, "n": len(part), "clips": part.paths,
                                "seconds": round(float(sum(part.seconds)), 1)}
                record["skipped"].setdefault(name, part.skipped)
        return Splits(train, validation, test, labels, record)

    def build(self, cfg: FitConfig, source: ModelSource, labels: list[str]):
        return build_audio(source, cfg, labels)

    def encode(self, examples: AudioExamples, proc: AudioProcessor, cfg: FitConfig, labels) -> AudioEncoded:
        return encode(examples, proc, labels, cfg.seed)

    def make_loss(self, cfg: FitConfig, train: AudioEncoded):
        from ftkit.data.audio_augment import AudioAugment

        augment = AudioAugment(cfg.data.audio_augment, train.proc.rate)
        if augment.active:
            train.augment = augment  # waveform augmentation of the training split only
        criterion = self.criterion(cfg, train)
        return lambda model, batch: criterion(model(**{k: v for k, v in batch.items() if k != "labels"}).logits,
                                              batch["labels"])

    def evaluate(self, model, data: AudioEncoded, labels: list[str], batch_size: int, precision: str):
        probs = predict_proba(model, data, batch_size, precision)
        return classification_metrics(probs, data.labels, labels), probs

    def prediction_frame(self, examples: AudioExamples, probs: np.ndarray, labels: list[str]) -> pd.DataFrame:
        return prediction_frame(examples, probs, labels)

    def save(self, model, proc: AudioProcessor, folder: Path, meta: dict, cfg: FitConfig) -> None:
        # "model_kind", not speech recognition's "family": the model card reads that one as a transcriber;
        # max_length (tokens) is a text setting
        kept = {k: v for k, v in meta.items() if k != "max_length"}
        meta = {"task": self.name, **kept, "model_kind": proc.kind, "rate": proc.rate, "max_seconds": proc.max_seconds,
                "pooling": "mean over the clip's frames" if proc.kind == "whisper" else "the model's own",
                "audio_column": cfg.data.audio_column, "label_column": cfg.data.label_column}
        write_model(model, proc, folder, meta)

    def predictor(self, folder: Path) -> "AudioClassifier":
        return AudioClassifier(folder)


def write_model(model, proc: AudioProcessor, folder: Path, meta: dict) -> None:
    """Weights (safetensors; a PEFT wrapper: the adapter and head), the feature extractor, the
    Whisper encoder's config, the original head and ftkit.json."""
    from safetensors.torch import save_file, save_model

    inner = _inner(model)
    with quiet_transformers():
        if hasattr(model, "save_pretrained"):
            model.save_pretrained(folder)
        else:  # WhisperClassifier; no config.json: plain transformers cannot load it
            save_model(model, str(folder / "model.safetensors"))
        proc.save_pretrained(folder)
    if proc.kind == "whisper":
        inner.encoder.config.to_json_file(str(folder / "encoder_config.json"))
    original = getattr(inner, "_ftkit_original_head", None)
    if original:
        save_file({k: v.contiguous() for k, v in original.items()}, str(folder / "original_head.safetensors"))
    (folder / "ftkit.json").write_text(json.dumps(meta, indent=2))


def windows(samples: np.ndarray, max_seconds: Optional[float], rate: int) -> list[np.ndarray]:
    """A clip longer than the model's window as equal consecutive pieces, each within it."""
    if not max_seconds or len(samples) <= max_seconds * rate:
        return [samples]
    return np.array_split(samples, math.ceil(len(samples) / (max_seconds * rate)))


class AudioClassifier:
    """A saved audio classifier (`ftkit predict` / `eval` / `export`, `ftkit.load`): weights,
    feature extractor and ftkit.json (labels, model kind, rate, window, temperature)."""

    def __init__(self, folder: Path):
        from transformers import AutoFeatureExtractor

        self.folder = folder
        self.meta = json.loads((folder / "ftkit.json").read_text())
        self.labels: list[str] = self.meta["labels"]
        with quiet_transformers():
            features = AutoFeatureExtractor.from_pretrained(folder)
        self.proc = AudioProcessor(self.meta["model_kind"], features, self.meta["rate"], self.meta.get("max_seconds"))
        self.model = self._load(folder)
        self.model.eval()

    def _load(self, folder: Path):
        from safetensors.torch import load_model
        from transformers import AutoModelForAudioClassification, WhisperConfig
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        from ftkit.tasks.whisper_classifier import WhisperClassifier

        if self.meta.get("adapter"):
            from ftkit.tasks.common import load_adapter
            return load_adapter(folder, self.meta, self._base)
        if self.meta["model_kind"] == "whisper":
            with quiet_transformers():
                encoder = WhisperEncoder(WhisperConfig.from_json_file(str(folder / "encoder_config.json")))
            model = WhisperClassifier(encoder, len(self.labels))
            load_model(model, str(folder / "model.safetensors"))
            return model
        with quiet_transformers():
            return AutoModelForAudioClassification.from_pretrained(folder, dtype=torch.float32)

    def _base(self, source, labels, remote):
        """The pretrained model a LoRA adapter was trained on (load_adapter builds it)."""
        cfg = FitConfig.model_validate({"task": "audio-classification", "model": {"trust_remote_code": remote}})
        return build_audio(source, cfg, labels)

    def read(self, path: str, columns: Optional[dict] = None, labelled: bool = True) -> AudioExamples:
        columns = columns or {}
        label = (columns.get("label") or self.meta["label_column"]) if labelled else None
        # any length; outside paths allowed: predict/eval have no --set (see image_classification)
        return read_clips(path, columns.get("audio") or self.meta["audio_column"], label, allow_outside=True)

    def predict_proba(self, examples: AudioExamples) -> np.ndarray:
        """(n, classes); a clip longer than the model's window: the mean over its windows
        (weighted by their length) of the per-window probabilities."""
        pieces, owner = [], []
        for i, path in enumerate(examples.paths):
            clip = read_audio(path, self.proc.rate, where=examples.where(i)).samples
            for piece in windows(clip, self.proc.max_seconds, self.proc.rate):
                pieces.append(piece)
                owner.append(i)
        data = AudioEncoded(pieces, None, self.proc, len(self.labels))
        probs = predict_proba(self.model, data, BATCH, self.meta.get("eval_precision", "fp32"))
        probs = apply_temperature(probs, self.meta.get("temperature"))  # fitted in fit with eval.calibrate
        out = np.zeros((len(examples), len(self.labels)), dtype=np.float64)
        weight = np.zeros(len(examples))
        for row, (i, piece) in enumerate(zip(owner, pieces)):
            out[i] += len(piece) * probs[row]
            weight[i] += len(piece)
        return (out / weight[:, None]).astype(np.float32)

    def evaluate(self, examples: AudioExamples) -> tuple[dict, np.ndarray]:
        check_known(examples, self.labels)
        index = {name: i for i, name in enumerate(self.labels)}
        probs = self.predict_proba(examples)
        return classification_metrics(probs, np.array([index[v] for v in examples.labels]), self.labels), probs

    def predict(self, paths: list) -> list[dict]:
        probs = self.predict_proba(check_clips(loose_clips(paths), skip_bad=False))
        return [{"label": self.labels[int(p.argmax())], "score": float(p.max()),
                 "probabilities": {n: float(v) for n, v in zip(self.labels, p)}} for p in probs]

    def frame(self, examples: AudioExamples, probs: np.ndarray) -> pd.DataFrame:
        return prediction_frame(examples, probs, self.labels)

    def predict_frame(self, data: Optional[str], paths: Optional[list[str]], column: Optional[str]) -> pd.DataFrame:
        if data is None:
            examples = check_clips(loose_clips(paths), skip_bad=False)
        else:
            examples = self.read(data, {"audio": column}, labelled=False)
        return self.frame(examples, self.predict_proba(examples)).drop(columns=["row"])

    def export(self, folder: Path) -> None:
        model = self.model
        if self.meta.get("adapter"):
            import copy
            model = copy.deepcopy(model).merge_and_unload()
        meta = {**self.meta, "adapter": False, "merged_adapter": bool(self.meta.get("adapter"))}
        write_model(model, self.proc, folder, meta)
        if (self.folder / "original_head.safetensors").is_file() and not (folder / "original_head.safetensors").is_file():
            import shutil
            shutil.copy(self.folder / "original_head.safetensors", folder)
