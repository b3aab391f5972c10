"""ONNX predictor for CTC speech recognition (wav2vec2, HuBERT, WavLM): the task's Transcriber with
the forward pass on onnxruntime, greedy CTC decoding and the CTC loss as the model computes it.
Needs torch (the processor comes from transformers; the loss is torch's ctc_loss). Whisper's
generation is not exported (graphs.speech_graph says why)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ftkit.errors import ConfigError
from ftkit.models.loading import quiet_transformers
from ftkit.onnxrt.runtime import NotExportable, onnx_session, read_meta, softmax
from ftkit.tasks.speech_models import SpeechProcessor, pad_labels
from ftkit.tasks.speech_predict import BATCH, Transcriber


class OnnxTranscriber(NotExportable, Transcriber):
    def __init__(self, folder: Path, threads: Optional[int] = None):
        from transformers import AutoProcessor

        self.folder = folder
        self.meta = m = read_meta(folder)
        self.labels: list[str] = []
        if m.get("family") != "ctc":
            raise ConfigError(f"{folder}: ONNX transcription runs CTC models only (this one is {m.get('family')!r})")
        with quiet_transformers():
            processor = AutoProcessor.from_pretrained(folder)
        self.proc = SpeechProcessor("ctc", processor, m["rate"], m.get("max_seconds"), 10_000, m.get("language"))
        self.session = onnx_session(folder, m, threads)

    def _forward(self, clips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(logits (batch, frames, vocab), frames each clip fills) of clips padded as speech_batch pads them."""
        enc = self.proc.features(clips, sampling_rate=self.proc.rate, padding=True, return_attention_mask=True,
                                 return_tensors="np")
        logits, frames = self.session.run({"input_values": enc["input_values"], "attention_mask": enc["attention_mask"]})
        return logits.astype(np.float32), frames.astype(np.int64)

    def transcribe(self, examples) -> tuple[list[str], float]:
        """Greedy CTC transcripts in data order (batches of speech_predict.BATCH) and the mean CTC
        loss per clip (nan unlabelled), as speech_models.transcribe_batch computes them."""
        data = self._encoded(examples)
        texts: list[str] = []
        loss_sum, n = 0.0, 0
        for start in range(0, len(data), BATCH):
            idx = range(start, min(start + BATCH, len(data)))
            logits, frames = self._forward([data.clips[i] for i in idx])
            texts += self.proc.tokenizer.batch_decode(logits.argmax(axis=-1))
            if data.labels is not None:
                loss_sum += self._ctc_loss(logits, frames, [data.labels[i] for i in idx]) * len(idx)
                n += len(idx)
        return texts, (loss_sum / n if n else float("nan"))

    def _ctc_loss(self, logits: np.ndarray, frames: np.ndarray, labels: list[np.ndarray]) -> float:
        """Wav2Vec2ForCTC's loss: log-softmax over the vocabulary, blank = pad id, its reduction."""
        import torch
        import torch.nn.functional as F

        ctc = self.meta["onnx"]["ctc"]
        padded = pad_labels(labels)
        mask = padded >= 0
        log_probs = F.log_softmax(torch.from_numpy(logits), dim=-1, dtype=torch.float32).transpose(0, 1)
        loss = F.ctc_loss(log_probs, padded.masked_select(mask), torch.from_numpy(frames), mask.sum(-1),
                          blank=ctc["blank"], reduction=ctc["reduction"], zero_infinity=ctc["zero_infinity"])
        return float(loss)

    def frame_probabilities(self, examples) -> list[np.ndarray]:
        """Per clip (frames, vocab) softmax over the frames it fills (the export's parity check)."""
        clips = self._encoded(examples).clips
        out = []
        for start in range(0, len(clips), BATCH):
            logits, frames = self._forward(clips[start:start + BATCH])
            out += [p[:f] for p, f in zip(softmax(logits), frames)]
        return out
