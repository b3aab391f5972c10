"""Speech recognition: audio clips in, transcripts out (Whisper or CTC models).

Input: a CSV/JSONL/Parquet with an audio path column (`--audio-column`, paths relative to the
table) and a transcript column (`--text-column`), or a folder of clips with a transcript file
(data/audio_data.py). Clips are read with soundfile, mixed down to mono and resampled (soxr)
to the model's rate; clips longer than the model takes are refused for training (skipped with
`data.skip_bad`); `predict` transcribes long clips in windows.

Training clips are augmented on the fly (speed, gain, noise; SpecAugment inside the model).
Metrics are WER and CER (jiwer) after `eval.normalize`; the untouched pretrained model is scored
on the same test clips first (`metrics.test_before`), so the gain shows in one file.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ftkit.config import FitConfig
from ftkit.data.audio import read_audio
from ftkit.data.audio_data import AudioExamples, model_window_seconds
from ftkit.data.splits import split_parts, split_seed
from ftkit.errors import ConfigError, DataError
from ftkit.evaluation.asr import asr_ci, asr_metrics, paired_change_ci
from ftkit.lazy import torch  # loaded at first use: clips are read and checked without it
from ftkit.models.loading import ModelSource, quiet_transformers
from ftkit.tasks import TASKS
from ftkit.tasks.base import Capabilities, Splits, TaskBase
from ftkit.tasks.speech_data import MAX_BATCH, SpeechEncoded, prediction_frame, read_clips, transcribe
from ftkit.tasks.speech_models import SpeechProcessor, build_speech, pad_labels, seq2seq_loss

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- model inputs

class CachedSpeech:
    """A split as the frozen encoder's outputs (cached on disk, read per batch) + label ids."""

    def __init__(self, hidden: np.ndarray, source: SpeechEncoded, rows: Optional[np.ndarray] = None):
        self.hidden, self.source = hidden, source
        self.rows = np.arange(len(hidden)) if rows is None else np.asarray(rows)  # rows of `hidden` this split uses
        pick = lambda xs: None if xs is None else [xs[i] for i in self.rows]  # noqa: E731
        self.labels, self.transcripts, self.proc = pick(source.labels), pick(source.transcripts), source.proc
        self.normalize, self.num_beams, self.max_new_tokens = source.normalize, source.num_beams, source.max_new_tokens
        self.lengths = source.lengths[self.rows]
        self.augment = None

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, rows) -> "CachedSpeech":
        """Some of the clips, reading the same cache file (the training rows scored at each validation)."""
        return CachedSpeech(self.hidden, self.source, self.rows[np.asarray(rows)])

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        rows = self.rows[indices]
        order = np.argsort(rows)  # memory maps read fastest in file order; rows go back in batch order after
        hidden = np.asarray(self.hidden[rows[order]], dtype=np.float32)  # (batch, frames, hidden)
        out = {"encoder_hidden": torch.from_numpy(hidden)[torch.from_numpy(np.argsort(order))]}
        if self.labels is not None:
            out["labels"] = pad_labels([self.labels[i] for i in indices])
        return out


def encode(examples: AudioExamples, proc: SpeechProcessor, cfg: FitConfig) -> SpeechEncoded:
    clips = [read_audio(p, proc.rate, where=examples.where(i)).samples for i, p in enumerate(examples.paths)]
    labels = None
    if examples.transcripts is not None:
        labels = [proc.labels(t) for t in examples.transcripts]
        long = [i for i, ids in enumerate(labels) if len(ids) > proc.max_label_tokens]
        if long:
            i = long[0]
            raise DataError(f"{examples.where(i)}: the transcript is {len(labels[i])} tokens, more than the "
                            f"{proc.max_label_tokens} the model can emit ({len(long)} such rows); cut the clip and "
                            "its transcript into shorter pieces")
    return SpeechEncoded(clips, labels, examples.transcripts, proc, cfg.eval, cfg.seed)


# ---------------------------------------------------------------- evaluation

def speech_metrics(data, hypotheses: list[str], loss: float) -> dict:
    return {**asr_metrics(data.transcripts, hypotheses, data.normalize), "loss": float(loss),
            "normalize": data.normalize}


# ---------------------------------------------------------------- the task

@TASKS.register("speech-recognition", "audio clips -> transcripts (Whisper or CTC models), WER/CER")
class SpeechRecognition(TaskBase):
    name = "speech-recognition"
    default_metric = "wer"
    metrics = ("wer", "cer", "loss")
    capabilities = Capabilities(zero_shot=True, encoder_cache=True, label_smoothing=False)
    input_kind = "audio"
    body_lr = 1e-5  # Whisper fine-tuning recipes use 1e-5 (base) to 6e-6 (large); 5e-5 makes it forget
    # a probe's readout is Whisper's pretrained output layer (or a CTC head), not a new head: 1e-3 wrecks it
    strategy_lr = {"linear-probe": 1e-4}
    train_eval_limit = 32  # training clips re-transcribed at each validation (generation is costly)
    advise_strategies = ("frozen-encoder", "lora", "full")  # what `ftkit advise` profiles by default
    eval_batch_limit = MAX_BATCH

    def prepare_data(self, cfg: FitConfig) -> Splits:
        """Read, check and split; writes nothing. Clips longer than the model takes are refused
        here (the limit comes from data.max_audio_seconds, else Whisper's 30 s when the model is one)."""
        d = cfg.data
        if not d.train:
            raise ConfigError("no training data: pass --train PATH (a CSV/JSONL with --audio-column and "
                              "--text-column, or a folder of clips with transcripts.txt)")
        limit = d.max_audio_seconds or model_window_seconds(cfg.model.name)
        read = lambda p: read_clips(p, cfg, max_seconds=limit)  # noqa: E731
        train = read(d.train)
        seed = split_seed(cfg)
        record = {"seed": seed, "train_source": train.source, "skipped": {"train": train.skipped}}
        train, validation, test = split_parts(train, read, d, seed, record, stratify=False)
        for name, part in (("train", train), ("validation", validation), ("test", test)):
            if part is not None:
                record[name] = {"source": part.source, "n": len(part), "clips": part.paths,
                                "seconds": round(float(sum(part.seconds)), 1)}
                record["skipped"].setdefault(name, part.skipped)
        # CTC folders without a tokenizer get one symbol per character seen in training (build())
        self.alphabet = sorted({c for t in train.transcripts for c in t})
        self.normalize = cfg.eval.normalize  # per-clip WER in predictions.csv
        return Splits(train, validation, test, [], record)

    def build(self, cfg: FitConfig, source: ModelSource, labels: list[str]):
        return build_speech(source, cfg, getattr(self, "alphabet", []))

    def encode(self, examples: AudioExamples, proc: SpeechProcessor, cfg: FitConfig, labels) -> SpeechEncoded:
        return encode(examples, proc, cfg)

    def cache_encoder(self, model, data: dict, cfg: FitConfig, precision: str) -> dict:
        """frozen-encoder: each split's encoder outputs, computed once (cached on disk)."""
        from ftkit.tasks.speech_cache import encoder_outputs

        if next(iter(data.values())).proc.kind != "whisper":
            raise ConfigError("--strategy frozen-encoder caches an encoder-decoder model's encoder outputs; a CTC "
                              "model has no decoder to train: use linear-probe, freeze-bottom, lora or full")
        batch = min(cfg.train.eval_batch_size, MAX_BATCH)
        return {name: CachedSpeech(encoder_outputs(model, part, batch, precision, name), part)
                for name, part in data.items()}

    def make_loss(self, cfg: FitConfig, train):
        from ftkit.data.audio_augment import AudioAugment

        augment = AudioAugment(cfg.data.audio_augment, train.proc.rate)
        if isinstance(train, SpeechEncoded) and augment.active:
            train.augment = augment  # waveform augmentation of the training split only
        smoothing = cfg.train.label_smoothing
        if train.proc.kind == "ctc":
            if smoothing:
                raise ConfigError("--set train.label_smoothing: CTC models have no label smoothing; set it to 0")
            return lambda model, batch: model(**batch).loss
        return lambda model, batch: seq2seq_loss(model, batch, smoothing)

    def evaluate(self, model, data, labels, batch_size: int, precision: str):
        hypotheses, loss = transcribe(model, data, batch_size, precision)
        return speech_metrics(data, hypotheses, loss), hypotheses

    def zero_shot(self, model, data, batch_size: int, precision: str, cfg: FitConfig) -> Optional[dict]:
        """The pretrained model's metrics on `data` before any training (None when its output
        layer is new, e.g. a CTC vocabulary built from the data: nothing to score)."""
        if not getattr(model, "ftkit_pretrained_head", False) or cfg.model.init == "random":
            return None
        metrics, hypotheses = self.evaluate(model, data, [], batch_size, precision)
        if cfg.eval.bootstrap:
            metrics["ci"] = self.confidence_intervals(data, hypotheses, [], cfg.eval.bootstrap, cfg.eval.level, cfg.seed)
        return {"metrics": metrics, "hypotheses": hypotheses}

    def change_ci(self, data, before: list[str], after: list[str], cfg: FitConfig) -> dict:
        """Paired bootstrap interval of the WER/CER change from the zero-shot transcripts."""
        e = cfg.eval
        return paired_change_ci(data.transcripts, before, after, data.normalize, e.bootstrap, e.level, cfg.seed)

    def confidence_intervals(self, data, hypotheses, labels, n_boot: int, level: float, seed: int) -> dict:
        """Bootstrap intervals of corpus WER and CER, resampling clips."""
        return asr_ci(data.transcripts, hypotheses, data.normalize, n_boot, level, seed)

    def prediction_frame(self, examples: AudioExamples, hypotheses: list[str], labels=None) -> pd.DataFrame:
        return prediction_frame(examples, hypotheses, getattr(self, "normalize", "basic"))

    def save(self, model, proc: SpeechProcessor, folder: Path, meta: dict, cfg: FitConfig) -> None:
        with quiet_transformers():
            model.save_pretrained(folder)  # safetensors (a PEFT wrapper: the adapter)
            proc.save_pretrained(folder)
        d, e = cfg.data, cfg.eval
        meta = {"task": self.name, **meta, "family": proc.kind, "language": proc.language, "rate": proc.rate,
                "max_seconds": proc.max_seconds, "normalize": e.normalize, "num_beams": e.num_beams,
                "max_new_tokens": e.max_new_tokens, "audio_column": d.audio_column, "text_column": d.text_column}
        (folder / "ftkit.json").write_text(json.dumps(meta, indent=2))

    def predictor(self, folder: Path):
        from ftkit.tasks.speech_predict import Transcriber

        return Transcriber(folder)
