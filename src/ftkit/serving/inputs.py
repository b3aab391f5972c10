"""A /predict request's inputs, checked and turned into what the predictor's predict() takes.

Texts go through as they are (NER: a string or a list of words; a model of several text columns:
a list of texts or an object keyed by column per input, checked here so one malformed pair is
refused alone, with its index, before it reaches a batch). Images and audio arrive as base64
strings in JSON or as multipart files; each is decoded and checked here (so one undecodable upload
is refused alone, with its index, before it reaches a batch) and written to a temporary file, the
same kind of path `ftkit predict --image/--audio` passes.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftkit.data.text_columns import input_segments
from ftkit.errors import DataError

FORMAT = 'send JSON {"inputs": [...]}'


class BadRequest(Exception):
    """A request ftkit refuses: HTTP status and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    max_inputs: int = 256  # per request (--max-inputs)
    max_text_chars: int = 100_000  # per text (--max-text-chars)


@dataclass
class Upload:
    """One decoded image or audio input: where it came from and its bytes."""

    name: str  # the multipart file name, or inputs[i]
    data: bytes
    suffix: str = ""


def from_json(body: bytes, kind: str, limits: Limits, columns: tuple[str, ...] = ()) -> list[Any]:
    """The inputs of a JSON body {"inputs": [...]}: texts (words: text or list of words; `columns`,
    a model's several text columns: a list or object of texts each) or Uploads."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as err:
        raise BadRequest(400, f"the body is not valid JSON ({_first_line(err)}); {FORMAT}") from None
    if not isinstance(payload, dict):
        raise BadRequest(422, f"the body is {_json_type(payload)}, not a JSON object; {FORMAT}")
    unknown = sorted(set(payload) - {"inputs"})
    if unknown:
        raise BadRequest(422, f"unknown field(s) {', '.join(map(repr, unknown))}; {FORMAT}")
    if "inputs" not in payload:
        raise BadRequest(422, f"no 'inputs' field; {FORMAT}")
    inputs = payload["inputs"]
    if not isinstance(inputs, list):
        raise BadRequest(422, f"'inputs' is {_json_type(inputs)}, not a list; {FORMAT}")
    _check_count(len(inputs), limits)
    if kind in ("image", "audio"):
        return [decode(_base64(x, i), f"inputs[{i}]", kind) for i, x in enumerate(inputs)]
    if kind == "text" and len(columns) > 1:
        return [_segments(x, i, columns, limits) for i, x in enumerate(inputs)]
    return [_text(x, i, kind, limits) for i, x in enumerate(inputs)]


def from_files(files: list[tuple[str, bytes]], kind: str, limits: Limits) -> list[Upload]:
    """Multipart uploads (images, audio): (file name, bytes) each."""
    if kind not in ("image", "audio"):
        raise BadRequest(415, f"this model takes texts: {FORMAT} (multipart uploads are for images and audio)")
    _check_count(len(files), limits)
    return [decode(data, name or f"files[{i}]", kind) for i, (name, data) in enumerate(files)]


def _check_count(n: int, limits: Limits) -> None:
    if n == 0:
        raise BadRequest(422, "'inputs' is empty; send at least one input")
    if n > limits.max_inputs:
        raise BadRequest(413, f"{n} inputs in one request; the limit is {limits.max_inputs} (--max-inputs)")


def _text(x, i: int, kind: str, limits: Limits):
    if kind == "words" and isinstance(x, list):
        if not all(isinstance(w, str) for w in x):
            raise BadRequest(422, f"inputs[{i}]: a list of words must hold only strings")
        size = sum(len(w) for w in x)
    elif isinstance(x, str):
        size = len(x)
    else:
        what = "a string or a list of words" if kind == "words" else "a string"
        raise BadRequest(422, f"inputs[{i}] is {_json_type(x)}; each input is {what}")
    if size > limits.max_text_chars:
        raise BadRequest(413, f"inputs[{i}]: {size:,} characters; the limit is {limits.max_text_chars:,} "
                              "(--max-text-chars)")
    return x


def _segments(x, i: int, columns: tuple[str, ...], limits: Limits):
    """One input of a model that reads several text columns: [texts] or {column: text}."""
    try:
        texts = input_segments(x, columns, f"inputs[{i}]")
    except DataError as err:
        raise BadRequest(422, str(err)) from None
    size = sum(len(t) for t in texts)
    if size > limits.max_text_chars:
        raise BadRequest(413, f"inputs[{i}]: {size:,} characters; the limit is {limits.max_text_chars:,} "
                              "(--max-text-chars)")
    return x


def _base64(x, i: int) -> bytes:
    if not isinstance(x, str):
        raise BadRequest(422, f"inputs[{i}] is {_json_type(x)}; send each file as a base64 string "
                              "(or use a multipart upload)")
    text = x.split(",", 1)[1] if x.startswith("data:") and "," in x else x  # a data: URL
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(422, f"inputs[{i}]: not valid base64") from None


def decode(data: bytes, name: str, kind: str) -> Upload:
    """An Upload whose bytes decode as an image / audio clip, or BadRequest naming the input."""
    if not data:
        raise BadRequest(422, f"{name}: empty file")
    suffix = _image_suffix(data, name) if kind == "image" else _audio_suffix(data, name)
    return Upload(name, data, suffix)


def _image_suffix(data: bytes, name: str) -> str:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt = image.format
                image.load()  # a truncated file fails here, not in the batch
    except Exception as err:  # noqa: BLE001  (PIL raises many kinds for bad bytes)
        raise BadRequest(422, f"{name}: not a readable image ({_first_line(err)})") from None
    return ".jpg" if fmt == "JPEG" else f".{(fmt or 'png').lower()}"


def _audio_suffix(data: bytes, name: str) -> str:
    import soundfile

    try:
        info = soundfile.info(io.BytesIO(data))
    except Exception as err:  # noqa: BLE001  (libsndfile errors for unreadable bytes)
        raise BadRequest(422, f"{name}: not a readable audio file ({_first_line(err)}); send WAV, FLAC, "
                              "OGG or MP3") from None
    if info.frames == 0:
        raise BadRequest(422, f"{name}: the audio file holds no samples")
    return {"WAV": ".wav", "FLAC": ".flac", "OGG": ".ogg", "MP3": ".mp3"}.get(info.format, ".wav")


def write_uploads(uploads: list[Upload], folder: Path) -> list[str]:
    """Each upload as a file in `folder` (a per-request temporary folder); their paths."""
    paths = []
    for i, up in enumerate(uploads):
        path = folder / f"input-{i}{up.suffix}"
        path.write_bytes(up.data)
        paths.append(str(path))
    return paths


def _json_type(x) -> str:
    """A JSON value's type in words: "a number", "an object", ..."""
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
             dict: "an object", type(None): "null"}
    return names.get(type(x), type(x).__name__)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__
