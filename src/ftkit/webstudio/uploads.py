"""Uploaded data for the studio: kept under RUNS/.studio/uploads/<id>/, size-capped, zips unpacked
safely, written whole or not at all; and a first look at what the data is (task and columns).
"""
from __future__ import annotations

import re
import shutil
import uuid
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Optional

from ftkit.errors import DataError
from ftkit.io import atomic_path

TABLES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
TAGGED = (".conll", ".txt", ".bio", ".iob")
IMAGES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")
AUDIO = (".wav", ".flac", ".ogg", ".mp3")
INPUT_TASKS = {"text": "text-classification", "image": "image-classification", "audio": "audio-classification"}
LABEL_NAMES = ("label", "labels", "category", "class", "target", "sentiment", "tag", "y")
MAX_FILES = 100_000


@dataclass
class Look:
    """What the studio's New run form shows about a data file: the detected task and columns."""

    path: str
    task: str
    columns: list = field(default_factory=list)
    text_column: Optional[str] = None
    label_column: Optional[str] = None
    image_column: Optional[str] = None
    audio_column: Optional[str] = None
    rows: int = 0
    preview: list = field(default_factory=list)

    def options(self) -> dict:
        """The ftkit.fit keyword options this implies (task and columns)."""
        keys = ("task", "text_column", "label_column", "image_column", "audio_column")
        return {k: v for k, v in asdict(self).items() if k in keys and v is not None}


def save_upload(root: Path, name: str, data: bytes, cap: int) -> Path:
    """The upload's path under root/.studio/uploads/<id>/ (a zip: its unpacked folder)."""
    if len(data) > cap:
        raise DataError(f"{name}: {len(data):,} bytes; uploads are capped at {cap:,} (--max-upload-mb)")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name)[:100] or "upload"
    folder = root / ".studio" / "uploads" / uuid.uuid4().hex[:12]
    folder.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        if safe.lower().endswith(".zip"):
            _unzip(data, tmp / Path(safe).stem, safe, cap * 4)
        else:
            (tmp / safe).write_bytes(data)
    target = folder / (Path(safe).stem if safe.lower().endswith(".zip") else safe)
    return _single_root(target) if target.is_dir() else target


def _unzip(data: bytes, out: Path, name: str, cap: int) -> None:
    import io

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DataError(f"{name}: not a readable zip file") from None
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > MAX_FILES:
        raise DataError(f"{name}: {len(members):,} files; at most {MAX_FILES:,}")
    if sum(m.file_size for m in members) > cap:
        raise DataError(f"{name}: unpacks to more than {cap:,} bytes")
    for m in members:
        parts = PurePosixPath(m.filename).parts
        if m.filename.startswith("/") or ".." in parts or (m.external_attr >> 16) & 0o170000 == 0o120000:
            raise DataError(f"{name}: member {m.filename!r} points outside the archive (or is a link)")
        if parts[0] == "__MACOSX" or PurePosixPath(m.filename).name.startswith("._"):
            continue
        target = out.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(m) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)


def _single_root(folder: Path) -> Path:
    """A zip of one folder (data/train/...): that folder."""
    children = [c for c in folder.iterdir() if not c.name.startswith(".")]
    return _single_root(children[0]) if len(children) == 1 and children[0].is_dir() else folder


def look(path: Path) -> Look:
    """Detect the task and columns of a data file or folder (the form's defaults; the user can change them)."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        return _look_folder(path)
    suffix = path.suffix.lower()
    if suffix in TAGGED or (suffix == ".jsonl" and _has_keys(path, ("tokens", "tags"))):
        return Look(str(path), "token-classification", ["tokens", "tags"], rows=_count_blank_separated(path))
    if suffix not in TABLES:
        raise DataError(f"{path}: not a table ({', '.join(TABLES)}), a CoNLL file or a folder of images/audio")
    return _look_table(path)


def _look_folder(path: Path) -> Look:
    files = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")][:MAX_FILES]
    images = sum(p.suffix.lower() in IMAGES for p in files)
    audio = sum(p.suffix.lower() in AUDIO for p in files)
    classes = sorted(c.name for c in path.iterdir() if c.is_dir() and not c.name.startswith("."))
    if not (images or audio) or not classes:
        raise DataError(f"{path}: expected one sub-folder per class holding images or audio clips")
    task = "image-classification" if images >= audio else "audio-classification"
    return Look(str(path), task, ["path", "label (folder)"], rows=max(images, audio),
                preview=[{"class": c, "files": sum(1 for _ in (path / c).rglob("*.*"))} for c in classes[:10]])


def _look_table(path: Path) -> Look:
    from ftkit.data.readers import read_table

    frame = read_table(path).frame
    columns = [str(c) for c in frame.columns]
    head = frame.head(200)
    kinds = {c: _kind(head[c]) for c in columns}
    label = next((c for c in columns if c.lower() in LABEL_NAMES), None)
    media = next((c for c in columns if kinds[c] in ("image", "audio")), None)
    text = None
    if media is None:
        texts = [c for c in columns if kinds[c] == "text" and c != label]
        text = max(texts, key=lambda c: head[c].astype(str).str.len().mean()) if texts else None
    if label is None:
        rest = [c for c in columns if c not in (text, media)]
        label = min(rest, key=lambda c: head[c].nunique()) if rest else None
    kind = kinds.get(media) if media is not None else "text"
    transcripts = (kind == "audio" and label is not None
                   and head[label].astype(str).str.split().str.len().mean() > 1.5)  # many-word labels
    task = "speech-recognition" if transcripts else INPUT_TASKS[kind]
    out = Look(str(path), task, columns, rows=len(frame), label_column=label,
               preview=head.head(5).astype(str).to_dict(orient="records"))
    if kind == "text":
        out.text_column = text
    elif kind == "image":
        out.image_column = media
    else:
        out.audio_column = media
        if transcripts:
            out.text_column, out.label_column = label, None
    return out


def _kind(values) -> str:
    strings = values.dropna().astype(str)
    if strings.empty:
        return "empty"
    lower = strings.str.lower()
    if lower.str.endswith(IMAGES).mean() > 0.8:
        return "image"
    if lower.str.endswith(AUDIO).mean() > 0.8:
        return "audio"
    return "text" if strings.str.len().mean() > 15 or strings.nunique() > 0.5 * len(strings) else "category"


def _has_keys(path: Path, keys: tuple) -> bool:
    import json

    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
    try:
        return all(k in json.loads(first) for k in keys)
    except (ValueError, TypeError):
        return False


def _count_blank_separated(path: Path) -> int:
    text = path.read_text(encoding="utf-8", errors="replace")
    return sum(1 for block in re.split(r"\n\s*\n", text) if block.strip())
