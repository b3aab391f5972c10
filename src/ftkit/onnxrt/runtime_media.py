"""ONNX predictors for images and audio clips: the task's ImageClassifier / AudioClassifier with
the forward pass on onnxruntime. Images need no torch (Pillow + numpy); audio's feature
extractors come from transformers, which imports torch."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ftkit.data.audio import read_audio
from ftkit.evaluation.calibration import apply_temperature
from ftkit.onnxrt.runtime import NotExportable, longest_first_probs, onnx_session, read_meta
from ftkit.tasks.audio_classification import BATCH, AudioClassifier, AudioProcessor, windows
from ftkit.tasks.image_classification import ImageClassifier, ImageEncoded, Preprocess


def normalize(pixels: np.ndarray, prep: Preprocess) -> np.ndarray:
    """uint8 (batch, 3, h, w) -> the model's input scale (Preprocess.normalize in numpy)."""
    mean = np.asarray(prep.mean, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(prep.std, dtype=np.float32).reshape(1, 3, 1, 1)
    return (pixels.astype(np.float32) / np.float32(255) - mean) / std


class OnnxImageClassifier(NotExportable, ImageClassifier):
    """ImageClassifier on onnxruntime: same decoding, resize + centre crop and normalisation."""

    def __init__(self, folder: Path, threads: Optional[int] = None):
        self.folder = folder
        self.meta = read_meta(folder)
        self.labels: list[str] = self.meta["labels"]
        self.prep = Preprocess(self.meta["image_size"], tuple(self.meta["mean"]), tuple(self.meta["std"]))
        self.session = onnx_session(folder, self.meta, threads)

    def _scaled_probs(self, data: ImageEncoded, batch_size: int = 64) -> np.ndarray:
        def logits(idx: np.ndarray) -> np.ndarray:
            return self.session.run({"pixel_values": normalize(data.pixels[idx], self.prep)})[0]

        # every image has the same size: lengths are all 1, so the batches run in data order
        probs = longest_first_probs(logits, data.lengths, batch_size, len(self.labels))
        return apply_temperature(probs, self.meta.get("temperature"))  # fitted in fit with eval.calibrate


def audio_inputs(proc: AudioProcessor, clips: list[np.ndarray]) -> dict[str, np.ndarray]:
    """AudioProcessor.inputs as numpy arrays (the same extractor calls)."""
    if proc.kind == "whisper":
        enc = proc.features(clips, sampling_rate=proc.rate, return_attention_mask=True, return_tensors="np")
        return {"input_features": enc["input_features"], "attention_mask": enc["attention_mask"]}
    return dict(proc.features(clips, sampling_rate=proc.rate, padding=True, return_tensors="np"))


class OnnxAudioClassifier(NotExportable, AudioClassifier):
    """AudioClassifier on onnxruntime: same resampling, windows of the model's length (a long
    clip: the length-weighted mean of its windows' probabilities), batches and temperature."""

    def __init__(self, folder: Path, threads: Optional[int] = None):
        from transformers import AutoFeatureExtractor

        from ftkit.models.loading import quiet_transformers

        self.folder = folder
        self.meta = read_meta(folder)
        self.labels: list[str] = self.meta["labels"]
        with quiet_transformers():
            features = AutoFeatureExtractor.from_pretrained(folder)
        self.proc = AudioProcessor(self.meta["model_kind"], features, self.meta["rate"], self.meta.get("max_seconds"))
        self.session = onnx_session(folder, self.meta, threads)

    def predict_proba(self, examples) -> np.ndarray:
        pieces, owner = [], []
        for i, path in enumerate(examples.paths):
            clip = read_audio(path, self.proc.rate, where=examples.where(i)).samples
            for piece in windows(clip, self.proc.max_seconds, self.proc.rate):
                pieces.append(piece)
                owner.append(i)

        def logits(idx: np.ndarray) -> np.ndarray:
            return self.session.run(audio_inputs(self.proc, [pieces[i] for i in idx]))[0]

        lengths = np.array([len(p) for p in pieces], dtype=np.int64)
        probs = longest_first_probs(logits, lengths, BATCH, len(self.labels))
        probs = apply_temperature(probs, self.meta.get("temperature"))
        out = np.zeros((len(examples), len(self.labels)), dtype=np.float64)
        weight = np.zeros(len(examples))
        for row, (i, piece) in enumerate(zip(owner, pieces)):
            out[i] += len(piece) * probs[row]
            weight[i] += len(piece)
        return (out / weight[:, None]).astype(np.float32)
