"""The CTranslate2 model.bin reader, on small files written here in the same layout."""
import struct

import numpy as np
import pytest

from ftkit.errors import ModelLoadError
from ftkit.models.ctranslate2 import read_model_bin

DTYPE_IDS = {np.float32: 0, np.int8: 1, np.float16: 4}


def pack_str(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_model_bin(path, variables: dict, aliases: dict, bf16: dict | None = None) -> None:
    """What CTranslate2's ModelSpec.save writes (version 6), for the variables given."""
    out = struct.pack("<I", 6) + pack_str("WhisperSpec") + struct.pack("<I", 3)
    items = [(n, a, DTYPE_IDS[a.dtype.type], a.tobytes()) for n, a in variables.items()]
    for name, array in (bf16 or {}).items():  # bfloat16: the top 16 bits of each float32
        items.append((name, array, 5, (array.astype(np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()))
    out += struct.pack("<I", len(items))
    for name, array, dtype, raw in items:
        out += pack_str(name) + struct.pack("<B", array.ndim) + struct.pack(f"<{array.ndim}I", *array.shape)
        out += struct.pack("<BI", dtype, len(raw)) + raw
    out += struct.pack("<I", len(aliases)) + b"".join(pack_str(a) + pack_str(t) for a, t in aliases.items())
    path.write_bytes(out)


def test_reads_every_variable_dtype_shape_and_alias(tmp_path):
    rng = np.random.default_rng(0)
    variables = {"decoder/embeddings/weight": rng.standard_normal((6, 4)).astype(np.float16),
                 "encoder/layer_0/self_attention/linear_0/weight": rng.standard_normal((12, 4)).astype(np.float32),
                 "encoder/conv1/bias": np.arange(5, dtype=np.int8), "scalar": np.array(3.5, dtype=np.float32)}
    bf16 = {"encoder/layer_norm/gamma": np.array([1.0, -2.5, 0.15625], dtype=np.float32)}
    path = tmp_path / "model.bin"
    write_model_bin(path, variables, {"decoder/projection/weight": "decoder/embeddings/weight"}, bf16)
    ckpt = read_model_bin(path)
    assert (ckpt.spec, ckpt.revision) == ("WhisperSpec", 3)
    for name, array in variables.items():
        assert ckpt.variables[name].dtype == array.dtype and np.array_equal(ckpt.variables[name], array)
    assert np.array_equal(ckpt.variables["encoder/layer_norm/gamma"], bf16["encoder/layer_norm/gamma"])  # exact in bf16
    assert ckpt.get("decoder/projection/weight") is ckpt.variables["decoder/embeddings/weight"]


def test_truncated_or_foreign_files_are_refused(tmp_path):
    path = tmp_path / "model.bin"
    write_model_bin(path, {"w": np.ones((64, 64), dtype=np.float16)}, {})
    part = tmp_path / "model.bin.part1"
    part.write_bytes(path.read_bytes()[:5000])  # one half of a split checkpoint
    with pytest.raises(ModelLoadError, match="concatenate"):
        read_model_bin(part)
    foreign = tmp_path / "pytorch_model.bin"
    foreign.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ModelLoadError, match="not a CTranslate2 model.bin"):
        read_model_bin(foreign)
