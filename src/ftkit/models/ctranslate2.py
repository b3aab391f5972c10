"""Reading CTranslate2 `model.bin` files (e.g. faster-whisper checkpoints) without CTranslate2.

The format (version 6, little-endian), as written by CTranslate2's `ModelSpec.save`:

    u32 version, str spec name, u32 revision, u32 n_variables,
    n_variables x (str name, u8 rank, u32 dims[rank], u8 dtype, u32 n_bytes, bytes),
    u32 n_aliases, n_aliases x (str alias, str target)

where `str` is a u16 byte length followed by the UTF-8 bytes and a NUL. Tensors come back as
numpy arrays in their stored dtype (float16 stays float16); aliases name a tensor stored once
(Whisper's output projection is its token embedding). Mapping names onto a Hugging Face model is
the importer's job, not this reader's.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ftkit.errors import ModelLoadError

# CTranslate2's DataType enum, in order
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
BFLOAT16 = 5  # numpy has no bfloat16: read as raw uint16 and widened to float32
SUPPORTED_VERSIONS = (5, 6)


@dataclass
class Checkpoint:
    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> stored name

    def get(self, name: str) -> np.ndarray:
        return self.variables[self.aliases.get(name, name)]


def read_model_bin(path: str | Path | list) -> Checkpoint:
    """A model.bin, or the list of its parts in order (read as one stream, never joined on disk)."""
    paths = [Path(p) for p in path] if isinstance(path, (list, tuple)) else [Path(path)]
    try:
        with Parts(paths) as f:
            return _read(f)
    except (struct.error, UnicodeDecodeError, ValueError) as err:
        raise ModelLoadError(f"{paths[0]}: not a CTranslate2 model.bin, or truncated ({err}); if it ships in parts "
                             "(model.bin.part1, .part2), pass them all") from None


class Parts:
    """Files read one after the other as if concatenated (only `read` is needed)."""

    def __init__(self, paths: list[Path]):
        self.files = [open(p, "rb") for p in paths]
        self.index = 0

    def read(self, n: int) -> bytes:
        chunks = []
        while n > 0 and self.index < len(self.files):
            chunk = self.files[self.index].read(n)
            if not chunk:
                self.index += 1
                continue
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def __enter__(self) -> "Parts":
        return self

    def __exit__(self, *exc) -> None:
        for f in self.files:
            f.close()


def _read(f: BinaryIO) -> Checkpoint:
    version = _u32(f)
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"format version {version}, expected one of {SUPPORTED_VERSIONS}")
    spec, revision = _str(f), _u32(f)
    variables = {}
    for _ in range(_u32(f)):
        name = _str(f)
        variables[name] = _tensor(f, name)
    aliases = {}
    head = f.read(4)
    if len(head) == 4:  # aliases are optional at the end of the file
        for _ in range(struct.unpack("<I", head)[0]):
            alias = _str(f)
            aliases[alias] = _str(f)
    return Checkpoint(spec, revision, variables, aliases)


def _tensor(f: BinaryIO, name: str) -> np.ndarray:
    rank = _u8(f)
    dims = struct.unpack(f"<{rank}I", _exact(f, 4 * rank))
    dtype, n_bytes = _u8(f), _u32(f)
    raw = _exact(f, n_bytes)
    if dtype == BFLOAT16:
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).reshape(dims)
    if dtype not in DTYPES:
        raise ValueError(f"variable {name!r}: unknown dtype id {dtype}")
    array = np.frombuffer(raw, dtype=np.dtype(DTYPES[dtype]).newbyteorder("<"))
    if array.size != int(np.prod(dims, dtype=np.int64)):
        raise ValueError(f"variable {name!r}: {n_bytes} bytes do not hold shape {dims}")
    return array.reshape(dims)


def _exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ValueError(f"file ends {n - len(data)} bytes early")
    return data


def _u8(f: BinaryIO) -> int:
    return _exact(f, 1)[0]


def _u32(f: BinaryIO) -> int:
    return struct.unpack("<I", _exact(f, 4))[0]


def _str(f: BinaryIO) -> str:
    length = struct.unpack("<H", _exact(f, 2))[0]
    return _exact(f, length).rstrip(b"\0").decode("utf-8")
