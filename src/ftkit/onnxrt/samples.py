"""Built-in sample inputs for the export-time parity check when no labelled data is given: each
written in the task's own input format, so the check runs the whole pipeline (reading,
tokenising or decoding, windows) as `ftkit predict` would. The long ones exercise truncation
(text, with a short max_length), windows with stride (NER) and window averaging (audio); they stay
within 64 positions, which small test models have."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

TEXTS = ["the movie was good and fun", "awful boring plot", "ok", "a film with words the tokenizer may not know: zyx qwv",
         " ".join(["the story was very good but the actor was dull and the plot boring"] * 3)]  # 42 words


def text_samples(folder: Path, meta: dict) -> Path:
    """One column of TEXTS; a model of several text columns gets each column TEXTS shifted by one
    more row (the long text meets short and long partners: pair truncation is exercised)."""
    path = folder / "samples.csv"
    columns = meta.get("text_columns") or [meta.get("text_column") or "text"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows([TEXTS[(i + j) % len(TEXTS)] for j in range(len(columns))] for i in range(len(TEXTS)))
    return path


def ner_samples(folder: Path, meta: dict) -> Path:
    path = folder / "samples.conll"
    sentences = [t.replace(":", " :").split() for t in TEXTS]
    path.write_text("\n\n".join("\n".join(words) for words in sentences) + "\n", encoding="utf-8")
    return path


def image_samples(folder: Path, meta: dict) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    out = folder / "images"
    out.mkdir()
    for i, (w, h, mode) in enumerate([(40, 30, "RGB"), (17, 61, "L"), (64, 64, "RGBA"), (8, 8, "RGB")]):
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels, "RGB").convert(mode).save(out / f"{i}.png")
    return out


def audio_samples(folder: Path, meta: dict, longest: float = 2.5) -> Path:
    """Tones at the model's rate; the last is `longest` windows long (classifiers average windows)."""
    import soundfile

    rate = int(meta.get("rate") or 16000)
    window = meta.get("max_seconds") or 1.0
    out = folder / "clips"
    out.mkdir()
    rng = np.random.default_rng(0)
    for i, (hz, seconds) in enumerate([(300, 0.5), (1200, 0.8), (700, min(window, 1.5)), (450, longest * window)]):
        t = np.arange(int(rate * seconds)) / rate
        clip = 0.3 * np.sin(2 * np.pi * hz * t) + 0.02 * rng.standard_normal(len(t))
        soundfile.write(out / f"{i}.wav", clip.astype(np.float32), rate)
    return out


def speech_samples(folder: Path, meta: dict) -> Path:
    return audio_samples(folder, {**meta, "max_seconds": meta.get("max_seconds") or 1.0}, longest=1.0)  # within the window


WRITERS = {"text-classification": text_samples, "text-multilabel": text_samples, "text-regression": text_samples,
           "token-classification": ner_samples,
           "image-classification": image_samples, "audio-classification": audio_samples,
           "speech-recognition": speech_samples}
