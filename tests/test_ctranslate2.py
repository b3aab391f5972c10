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
    with pytest.raises(ModelLoadError, match="pass them all"):
        read_model_bin(part)
    rest = tmp_path / "model.bin.part2"
    rest.write_bytes(path.read_bytes()[5000:])
    assert read_model_bin([part, rest]).variables["w"].shape == (64, 64)  # parts read as one stream
    foreign = tmp_path / "pytorch_model.bin"
    foreign.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ModelLoadError, match="not a CTranslate2 model.bin"):
        read_model_bin(foreign)


def ct2_variables(model) -> dict:
    """The inverse of the importer: a Hugging Face Whisper as CTranslate2 would store it (fused q,k,v
    with a zero k bias, gamma/beta norms, the output projection an alias)."""
    sd = {k: t.detach().numpy().astype(np.float32) for k, t in model.state_dict().items()}
    out = {"encoder/num_heads": np.array(model.config.encoder_attention_heads, dtype=np.int16),
           "decoder/num_heads": np.array(model.config.decoder_attention_heads, dtype=np.int16),
           "decoder/embeddings/weight": sd["model.decoder.embed_tokens.weight"]}
    norm = lambda src, dst: out.update({f"{dst}/gamma": sd[f"{src}.weight"], f"{dst}/beta": sd[f"{src}.bias"]})  # noqa: E731
    lin = lambda src, dst: out.update({f"{dst}/weight": sd[f"{src}.weight"], f"{dst}/bias": sd[f"{src}.bias"]})  # noqa: E731

    def fused(src, dst, names):
        zero = np.zeros_like(sd[f"{src}.q_proj.bias"])
        out[f"{dst}/weight"] = np.concatenate([sd[f"{src}.{n}_proj.weight"] for n in names])
        out[f"{dst}/bias"] = np.concatenate([zero if n == "k" else sd[f"{src}.{n}_proj.bias"] for n in names])

    for side, n in (("encoder", model.config.encoder_layers), ("decoder", model.config.decoder_layers)):
        out[f"{side}/position_encodings/encodings"] = sd[f"model.{side}.embed_positions.weight"]
        norm(f"model.{side}.layer_norm", f"{side}/layer_norm")
        for i in range(n):
            src, dst = f"model.{side}.layers.{i}", f"{side}/layer_{i}"
            fused(f"{src}.self_attn", f"{dst}/self_attention/linear_0", "qkv")
            lin(f"{src}.self_attn.out_proj", f"{dst}/self_attention/linear_1")
            norm(f"{src}.self_attn_layer_norm", f"{dst}/self_attention/layer_norm")
            if side == "decoder":
                lin(f"{src}.encoder_attn.q_proj", f"{dst}/attention/linear_0")
                fused(f"{src}.encoder_attn", f"{dst}/attention/linear_1", "kv")
                lin(f"{src}.encoder_attn.out_proj", f"{dst}/attention/linear_2")
                norm(f"{src}.encoder_attn_layer_norm", f"{dst}/attention/layer_norm")
            lin(f"{src}.fc1", f"{dst}/ffn/linear_0")
            lin(f"{src}.fc2", f"{dst}/ffn/linear_1")
            norm(f"{src}.final_layer_norm", f"{dst}/ffn/layer_norm")
    for conv in ("conv1", "conv2"):
        lin(f"model.encoder.{conv}", f"encoder/{conv}")
    return out


def test_whisper_import_matches_the_original_model(tmp_path):
    import json

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from conftest import run_cli
    from ftkit.models.whisper_import import import_whisper

    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>",
                "<|notimestamps|>"]
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate("abcdefghij")}, merges=[]))
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    tok.add_special_tokens(specials)  # ids 10..15
    src = tmp_path / "ct2"
    src.mkdir()
    tok.save(str(src / "tokenizer.json"))
    torch.manual_seed(0)
    original = WhisperForConditionalGeneration(WhisperConfig(
        vocab_size=16, num_mel_bins=8, d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_source_positions=20,
        max_target_positions=12, pad_token_id=10, bos_token_id=10, eos_token_id=10, decoder_start_token_id=11)).eval()
    with torch.no_grad():  # HF initialises biases to 0: give them values so a mix-up shows
        for name, p in original.named_parameters():
            if name.endswith("bias"):
                p.normal_()
    variables = ct2_variables(original)
    DTYPE_IDS[np.int16] = 2
    write_model_bin(src / "model.bin", variables, {"decoder/projection/weight": "decoder/embeddings/weight"})
    (src / "config.json").write_text(json.dumps({"lang_ids": [12], "suppress_ids": [], "suppress_ids_begin": [10]}))

    folder = import_whisper(src, tmp_path / "hf")
    imported = WhisperForConditionalGeneration.from_pretrained(folder).eval()
    features, tokens = torch.randn(2, 8, 40), torch.tensor([[11, 12, 13, 15, 3], [11, 12, 13, 15, 7]])
    with torch.no_grad():
        want = original(input_features=features, decoder_input_ids=tokens).logits
        got = imported(input_features=features, decoder_input_ids=tokens).logits
    assert torch.allclose(got, want, atol=1e-5)
    ids = imported.generate(features, language="en", task="transcribe", max_new_tokens=3)
    assert ids.shape == (2, 3)  # generate(language=..., task=...) works: the generation config has what it needs
    g = imported.generation_config
    assert (g.lang_to_id, g.task_to_id, g.no_timestamps_token_id, g.decoder_start_token_id) == (
        {"<|en|>": 12}, {"transcribe": 13, "translate": 14}, 15, 11)
    assert {p.name for p in folder.iterdir()} >= {"model.safetensors", "tokenizer.json", "preprocessor_config.json",
                                                  "generation_config.json", "config.json"}
    again = run_cli("import", "ctranslate2", src, folder)
    assert again.returncode == 2 and "--overwrite" in again.stderr
