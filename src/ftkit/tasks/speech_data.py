"""Speech recognition's clips, inputs and transcription, shared by the task (speech_recognition.py)
and the saved recogniser (speech_predict.py), which import them from here."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ftkit.config import FitConfig
from ftkit.data.audio_data import (AUDIO_SUFFIXES, AudioExamples, check_clips, clips_digest, from_table, loose_clips,
                                   transcribed_folder)
from ftkit.errors import DataError
from ftkit.evaluation.asr import utterance_errors
from ftkit.lazy import torch  # loaded at first use: clips are read and checked without it
from ftkit.tasks.speech_models import SpeechProcessor, speech_batch, transcribe_batch


def read_clips(path: str, cfg: FitConfig, labelled: bool = True, max_seconds: Optional[float] = None) -> AudioExamples:
    """A table or a folder with a transcript file; every clip decoded once (check_clips)."""
    d = cfg.data
    p = Path(path)
    text = d.text_column if labelled else None
    if p.is_dir():
        examples = (transcribed_folder(p, d.audio_column, d.text_column, d.allow_outside_paths) if labelled
                    else _flat_folder(p))
    elif p.is_file():
        examples = from_table(p, d.audio_column, text, allow_outside=d.allow_outside_paths)
    else:
        raise DataError(f"{p}: no such file or folder")
    return check_clips(examples, d.skip_bad, max_seconds)


def _flat_folder(folder: Path) -> AudioExamples:
    return loose_clips(sorted(f for f in folder.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES), str(folder))


class SpeechEncoded:
    """Clips at the model's rate plus label ids; batches become model inputs on the fly, so
    training clips can be augmented (`augment`, set by the task's loss for the training split)."""

    def __init__(self, clips: list[np.ndarray], labels: Optional[list[np.ndarray]], transcripts: Optional[list[str]],
                 proc: SpeechProcessor, eval_cfg, seed: int):
        self.clips, self.labels, self.transcripts, self.proc = clips, labels, transcripts, proc
        self.normalize, self.num_beams, self.max_new_tokens = eval_cfg.normalize, eval_cfg.num_beams, eval_cfg.max_new_tokens
        self.seed = seed
        self.augment = None
        # Whisper pads every clip to 30 s: batch by transcript length; CTC by audio length.
        sizes = [len(x) for x in labels] if labels is not None and proc.kind == "whisper" else [len(c) for c in clips]
        self.lengths = np.asarray(sizes, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.clips)

    def fingerprint(self) -> str:
        return clips_digest(self.clips, f"{self.proc.kind}|{self.proc.rate}|{self.proc.features.to_json_string()}")

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        clips = [self.clips[i] for i in indices]
        if self.augment is not None:
            # seeded by the batch itself: the same batch gets the same augmentation after a resume
            rng = np.random.default_rng([self.seed, *map(int, indices)])
            clips = [self.augment(c, rng) for c in clips]
        labels = None if self.labels is None else [self.labels[i] for i in indices]
        return speech_batch(self.proc, clips, labels)


# Whisper runs 30 s windows: attention over 1,500 frames and the decoder's cached keys/values
# grow with the batch (64 clips took ~6 GB on a CPU); more clips per batch buy little speed.
MAX_BATCH = 16


def transcribe(model, data, batch_size: int, precision: str) -> tuple[list[str], float]:
    """Transcripts of every clip (in data order) and the mean loss (nan unlabelled)."""
    from ftkit.training.device import release_freed_memory

    batch_size = min(batch_size, MAX_BATCH)
    model.eval()
    texts: list[str] = []
    loss_sum, tokens = 0.0, 0
    for start in range(0, len(data), batch_size):
        idx = np.arange(start, min(start + batch_size, len(data)))
        out, loss, n = transcribe_batch(model, data.proc, data.batch(idx), precision, data.num_beams,
                                        data.max_new_tokens)
        texts += out
        if n:
            loss_sum, tokens = loss_sum + loss, tokens + n
    release_freed_memory()  # generation's key/value caches are far larger than a training step's tensors
    return texts, (loss_sum / tokens if tokens else float("nan"))


def prediction_frame(examples: AudioExamples, hypotheses: list[str], normalize: str) -> pd.DataFrame:
    frame = pd.DataFrame({"row": examples.rows, "audio": examples.paths})
    if examples.transcripts is not None:
        frame["reference"] = examples.transcripts
    frame["transcript"] = hypotheses
    if examples.transcripts is not None:
        errors = utterance_errors(examples.transcripts, hypotheses, normalize)
        frame["wer"] = np.round(errors["word_errors"] / np.maximum(errors["words"], 1), 4)
    return frame
