"""Audio datasets for the speech tasks: which clips, their transcripts or labels, and where each
came from, read from a table of paths or from a folder.

- table (CSV/TSV/JSONL/Parquet): an audio path column (relative to the table's folder) and a
  transcript column (speech recognition) or a label column (audio classification);
- folder, speech recognition: audio files plus one transcript file in the folder
  (`metadata.csv` / `transcripts.csv|tsv|jsonl` with the same columns as a table, or
  `transcripts.txt` with `NAME<TAB>TEXT` or `NAME: TEXT` lines, NAME a path relative to the
  folder with or without its extension);
- folder, audio classification: one sub-folder per class.

Every clip is decoded once when read (`check_clips`), so a corrupt, empty, silent or too long
file is found before training: an error naming the file and the row that points at it, or,
with `data.skip_bad`, skipped and counted.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ftkit.data.audio import read_audio
from ftkit.data.readers import is_inside, read_table, read_utf8, table_file
from ftkit.errors import DataError, FtkitError

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif"}
TRANSCRIPT_TABLES = ("metadata.csv", "metadata.jsonl", "transcripts.csv", "transcripts.tsv", "transcripts.jsonl")
TRANSCRIPT_TEXT = "transcripts.txt"
LINE = re.compile(r"^(?P<name>[^\t:]+?)(?:\t|:\s+|\s+)(?P<text>.*\S)\s*$")


@dataclass
class AudioExamples:
    """Clips of one split. `transcripts` for speech recognition, `labels` for classification."""

    paths: list[str]
    transcripts: Optional[list[str]]
    labels: Optional[list[str]]
    source: str
    rows: list  # table line of each clip, or its path for folders
    unit: str = "line"
    seconds: list = field(default_factory=list)  # duration of each clip (filled by check_clips)
    skipped: dict = field(default_factory=dict)  # reason -> count of clips left out (data.skip_bad)

    def where(self, i: int) -> str:
        return f"{self.source} {self.unit} {self.rows[i]}" if self.unit != "file" else self.paths[i]

    def subset(self, keep: list[int]) -> "AudioExamples":
        pick = lambda xs: None if xs is None else [xs[i] for i in keep]  # noqa: E731
        return AudioExamples([self.paths[i] for i in keep], pick(self.transcripts), pick(self.labels), self.source,
                             [self.rows[i] for i in keep], self.unit, pick(self.seconds) if self.seconds else [])

    def __len__(self) -> int:
        return len(self.paths)


# ---------------------------------------------------------------- tables

def from_table(path: Path, audio_column: str, text_column: Optional[str] = None,
               label_column: Optional[str] = None, allow_outside: bool = False) -> AudioExamples:
    """Clips named in a table; paths are relative to the table's folder (and stay inside it
    unless `allow_outside`)."""
    from ftkit.data.labels import table_labels

    table = read_table(path)
    table.require(audio_column, "--audio-column")
    paths = [str(table_file(table, i, audio_column, "audio file", allow_outside)) for i in range(len(table))]
    transcripts = labels = None
    if text_column is not None:
        table.require(text_column, "--text-column")
        transcripts = [_transcript(table.where(i), v, text_column) for i, v in enumerate(table.frame[text_column])]
    if label_column is not None:
        table.require(label_column, "--label-column")
        labels = table_labels(table, label_column)
    return AudioExamples(paths, transcripts, labels, str(path), table.lines, table.unit)


def _transcript(where: str, value, column: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: empty transcript in column {column!r}; transcribe the clip or remove the row")
    return " ".join(value.split())


# ---------------------------------------------------------------- folders

def transcribed_folder(folder: Path, audio_column: str, text_column: str, allow_outside: bool = False) -> AudioExamples:
    """A folder of clips with one transcript file (see the module docstring)."""
    for name in TRANSCRIPT_TABLES:
        if (folder / name).is_file():
            return from_table(folder / name, audio_column, text_column, allow_outside=allow_outside)
    if (folder / TRANSCRIPT_TEXT).is_file():
        return _from_transcript_lines(folder / TRANSCRIPT_TEXT, allow_outside)
    raise DataError(f"{folder}: no transcript file; put one of {', '.join(TRANSCRIPT_TABLES + (TRANSCRIPT_TEXT,))} "
                    "next to the clips (or pass a CSV/JSONL with --audio-column and --text-column)")


def _from_transcript_lines(path: Path, allow_outside: bool = False) -> AudioExamples:
    paths, texts, rows = [], [], []
    for number, raw in enumerate(read_utf8(path).split("\n"), 1):
        if not raw.strip() or raw.lstrip().startswith(("#", ";")):
            continue
        m = LINE.match(raw.strip())
        if not m:
            raise DataError(f"{path} line {number}: expected 'NAME<TAB>TEXT' or 'NAME: TEXT'")
        clip = _find_clip(path, number, m["name"].strip())
        if not allow_outside and not is_inside(clip, path.parent):
            raise DataError(f"{path} line {number}: audio file {m['name'].strip()!r} is outside the folder "
                            f"{path.parent}; move it there, or pass --set data.allow_outside_paths=true")
        paths.append(str(clip))
        texts.append(" ".join(m["text"].split()))
        rows.append(number)
    if not paths:
        raise DataError(f"{path}: no transcript lines")
    return AudioExamples(paths, texts, None, str(path), rows)


def _find_clip(path: Path, number: int, name: str) -> Path:
    file = path.parent / name
    try:
        for candidate in [file] + [file.with_name(file.name + suffix) for suffix in sorted(AUDIO_SUFFIXES)]:
            if candidate.is_file():
                return candidate
    except (OSError, ValueError):  # a name too long for the file system, or a bare "/"
        pass
    raise DataError(f"{path} line {number}: no audio file {name!r} (with or without {', '.join(sorted(AUDIO_SUFFIXES))}) "
                    f"in {path.parent}")


def class_folders(folder: Path, labelled: bool = True) -> AudioExamples:
    """One sub-folder per class (audio classification); flat = unlabelled clips (predict)."""
    classes = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if labelled and not classes:
        raise DataError(f"{folder}: expected one sub-folder per class (e.g. {folder}/yes/1.wav)")
    if not classes:
        files = sorted(str(f) for f in folder.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES)
        return AudioExamples(files, None, None, str(folder), list(files), "file")
    paths, labels = [], []
    for d in classes:
        files = sorted(str(f) for f in d.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)
        paths += files
        labels += [d.name] * len(files)
    return AudioExamples(paths, None, labels if labelled else None, str(folder), list(paths), "file")


def loose_clips(paths: list, source: str = "--audio") -> AudioExamples:
    """Clips given one by one (predict)."""
    for p in paths:
        if not Path(p).is_file():
            raise DataError(f"{p}: audio file not found")
    return AudioExamples([str(p) for p in paths], None, None, source, [str(p) for p in paths], "file")


def clips_digest(clips, settings: str) -> str:
    """Hash of decoded clips and the settings that turn them into model inputs: the key of the
    feature and encoder-output caches."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    for clip in clips:
        digest.update(clip.tobytes())
    digest.update(settings.encode())
    return digest.hexdigest()


# ---------------------------------------------------------------- validation

def check_clips(examples: AudioExamples, skip_bad: bool, max_seconds: Optional[float] = None,
                what: str = "clip") -> AudioExamples:
    """Decode every clip once (native rate): unreadable, empty or silent files, and clips longer
    than `max_seconds`, are an error naming the file and row, or skipped and counted with `skip_bad`."""
    if not len(examples):
        raise DataError(f"{examples.source}: no audio files found ({', '.join(sorted(AUDIO_SUFFIXES))})")
    seconds, bad = [], {}
    for i, path in enumerate(examples.paths):
        where = None if examples.unit == "file" else examples.where(i)
        try:
            clip = read_audio(path, None, where=where)
            if max_seconds and clip.seconds > max_seconds:
                raise DataError(f"{where + ': ' if where else ''}{path}: the {what} is {clip.seconds:.1f} s, longer "
                                f"than the {max_seconds:g} s the model takes; cut it into shorter clips, each with its "
                                "own transcript")
        except DataError as err:
            if not skip_bad:
                hint = "" if "skip_bad" in str(err) else " (or pass --set data.skip_bad=true to skip such files)"
                raise DataError(f"{err}{hint}") from None
            bad[i] = "too long" if "longer than" in str(err) else "unreadable"
            seconds.append(0.0)
            continue
        seconds.append(clip.seconds)
    examples.seconds = seconds
    if not bad:
        return examples
    kept = examples.subset([i for i in range(len(examples)) if i not in bad])
    for reason in bad.values():
        kept.skipped[reason] = kept.skipped.get(reason, 0) + 1
    log.warning("%s: skipped %d clips (%s; first: %s)", examples.source, len(bad),
                ", ".join(f"{n} {r}" for r, n in kept.skipped.items()), examples.paths[min(bad)])
    if not len(kept):
        raise DataError(f"{examples.source}: no usable clips")
    return kept


def model_window_seconds(model_name: str) -> Optional[float]:
    """The longest clip one forward pass takes: Whisper's window (its feature extractor's
    chunk_length, 30 s); None for models that take any length (CTC, wav2vec2 classifiers)."""
    import json

    from ftkit.models.loading import resolve

    try:
        folder = Path(resolve(model_name).location)
        config = json.loads((folder / "config.json").read_text())
        if config.get("model_type") != "whisper":
            return None
        features = json.loads((folder / "preprocessor_config.json").read_text())
        return float(features.get("chunk_length", 30))
    except (FtkitError, OSError, ValueError):
        return None  # the model's own loading reports what is wrong with it
