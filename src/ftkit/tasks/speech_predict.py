"""A saved speech recogniser (`ftkit predict` / `ftkit eval` / `ftkit export`): the model folder's
weights, processor and ftkit.json (family, language, rate, normalisation, decoding settings)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import pandas as pd
import torch

from ftkit.config import EvalConfig, FitConfig
from ftkit.data.audio import read_audio
from ftkit.data.audio_data import AudioExamples, check_clips, loose_clips
from ftkit.models.loading import quiet_transformers
from ftkit.tasks.speech_models import SpeechProcessor, build_speech, transcribe_long
from ftkit.evaluation.asr import asr_metrics
from ftkit.tasks.speech_data import SpeechEncoded, prediction_frame, read_clips, transcribe
from ftkit.tasks.common import load_adapter

BATCH = 16


class Transcriber:
    def __init__(self, folder: Path):
        self.folder = folder
        self.meta = json.loads((folder / "ftkit.json").read_text())
        self.labels: list[str] = []
        self.model, self.proc = self._load(folder)
        self.model.eval()

    def _load(self, folder: Path):
        from transformers import AutoModelForCTC, AutoProcessor, WhisperForConditionalGeneration

        m = self.meta
        with quiet_transformers():
            processor = AutoProcessor.from_pretrained(folder)
            if m.get("adapter"):
                model = load_adapter(folder, m, self._base)
            elif m["family"] == "whisper":
                model = WhisperForConditionalGeneration.from_pretrained(folder, dtype=torch.float32)
            else:
                model = AutoModelForCTC.from_pretrained(folder, dtype=torch.float32)
        if m["family"] == "whisper":
            processor.tokenizer.set_prefix_tokens(language=m["language"], task="transcribe", predict_timestamps=False)
        proc = SpeechProcessor(m["family"], processor, m["rate"], m.get("max_seconds"), 10_000, m.get("language"))
        return model, proc

    def _base(self, source, labels, remote):
        """The pretrained model a LoRA adapter was trained on (load_adapter builds it)."""
        cfg = FitConfig.model_validate({"task": "speech-recognition", "model": {"language": self.meta.get("language"),
                                                                                 "trust_remote_code": remote}})
        return build_speech(source, cfg, [])

    # ------------------------------------------------------------------ reading
    def _cfg(self, columns: Optional[dict] = None) -> FitConfig:
        columns = columns or {}
        m = self.meta
        return FitConfig.model_validate({"task": "speech-recognition", "data": {
            "audio_column": columns.get("audio") or m["audio_column"],
            "text_column": columns.get("text") or m["text_column"],
            "allow_outside_paths": True}})  # predict/eval have no --set (see image_classification)

    def read(self, path: str, columns: Optional[dict] = None, labelled: bool = True) -> AudioExamples:
        return read_clips(path, self._cfg(columns), labelled)  # any length: long clips go in windows

    # ------------------------------------------------------------------ transcribing
    def transcribe(self, examples: AudioExamples) -> tuple[list[str], float]:
        """One transcript per clip, and the mean loss of the clips that fit the model's window (nan
        unlabelled); longer clips are decoded window by window (Whisper's long-form decoding)."""
        limit = self.proc.max_seconds
        long = {i for i, s in enumerate(examples.seconds) if limit and s > limit}
        short = [i for i in range(len(examples)) if i not in long]
        out: list[Optional[str]] = [None] * len(examples)
        loss = float("nan")
        if short:
            texts, loss = transcribe(self.model, self._encoded(examples.subset(short)), BATCH, self._precision)
            for i, text in zip(short, texts):
                out[i] = text
        for i in sorted(long):
            clip = read_audio(examples.paths[i], self.proc.rate).samples
            out[i] = transcribe_long(self.model, self.proc, clip, self.meta.get("num_beams", 1))
        return out, loss

    @property
    def _precision(self) -> str:
        return self.meta.get("eval_precision", "fp32")

    def _encoded(self, examples: AudioExamples) -> SpeechEncoded:
        clips = [read_audio(p, self.proc.rate, where=examples.where(i)).samples for i, p in enumerate(examples.paths)]
        labels = None
        if examples.transcripts is not None:
            labels = [self.proc.labels(t) for t in examples.transcripts]
        settings = EvalConfig(normalize=self.meta.get("normalize", "basic"), num_beams=self.meta.get("num_beams", 1),
                              max_new_tokens=self.meta.get("max_new_tokens", 128))
        return SpeechEncoded(clips, labels, examples.transcripts, self.proc, settings, 0)

    def evaluate(self, examples: AudioExamples) -> tuple[dict, list[str]]:
        hypotheses, loss = self.transcribe(examples)
        metrics = asr_metrics(examples.transcripts, hypotheses, self.meta.get("normalize", "basic"))
        return {**metrics, "loss": loss, "normalize": self.meta.get("normalize", "basic")}, hypotheses

    def predict(self, paths: list) -> list[dict]:
        examples = check_clips(loose_clips(paths), skip_bad=False)
        return [{"audio": p, "transcript": t} for p, t in zip(examples.paths, self.transcribe(examples)[0])]

    def frame(self, examples: AudioExamples, hypotheses: list[str]) -> pd.DataFrame:
        return prediction_frame(examples, hypotheses, self.meta.get("normalize", "basic"))

    def predict_frame(self, data: Optional[str], paths: Optional[list[str]], column: Optional[str]) -> pd.DataFrame:
        if data is None:
            examples = check_clips(loose_clips(paths), skip_bad=False)
        else:
            examples = self.read(data, {"audio": column}, labelled=False)
        return self.frame(examples, self.transcribe(examples)[0]).drop(columns=["row"])

    def export(self, folder: Path) -> None:
        model = self.model
        if self.meta.get("adapter"):
            import copy
            model = copy.deepcopy(model).merge_and_unload()
        with quiet_transformers():
            model.save_pretrained(folder)
            self.proc.save_pretrained(folder)
        meta = {**self.meta, "adapter": False, "merged_adapter": bool(self.meta.get("adapter"))}
        (folder / "ftkit.json").write_text(json.dumps(meta, indent=2))
