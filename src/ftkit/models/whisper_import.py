"""`ftkit import ctranslate2 SRC OUT`: a CTranslate2 (faster-whisper) Whisper checkpoint -> a Hugging
Face folder (safetensors weights, tokenizer, feature extractor, generation config) that
`WhisperForConditionalGeneration.from_pretrained` loads.

CTranslate2 fuses attention projections: self-attention `linear_0` is q, k, v stacked (3d, d), the
decoder's cross-attention `linear_0` is q and `linear_1` is k, v stacked (2d, d). Whisper has no
k bias (CTranslate2 stores zeros there). Layer norms are `gamma` / `beta`; the output projection
is an alias of the token embedding (tied in Hugging Face too).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from ftkit.errors import ModelLoadError
from ftkit.io import atomic_path
from ftkit.models.ctranslate2 import Checkpoint, read_model_bin

NORM = {"gamma": "weight", "beta": "bias"}


def model_files(src: Path) -> list[Path]:
    """SRC/model.bin, or its parts model.bin.part1, .part2, ... (split for package size limits),
    which read_model_bin reads as one stream."""
    whole = src / "model.bin"
    if whole.is_file():
        return [whole]
    parts = sorted(src.glob("model.bin.part*"), key=lambda p: int(p.suffix.removeprefix(".part") or 0))
    if not parts:
        raise ModelLoadError(f"{src}: no model.bin (or model.bin.part1, .part2, ...); pass the CTranslate2 model folder")
    return parts


def whisper_config(ckpt: Checkpoint, ct2: dict, eos: int, start: int):
    from transformers import WhisperConfig

    v = ckpt.variables
    count = lambda side: len({k.split("/")[1] for k in v if re.match(rf"{side}/layer_\d+/", k)})  # noqa: E731
    vocab, d = v["decoder/embeddings/weight"].shape
    return WhisperConfig(
        vocab_size=vocab, num_mel_bins=v["encoder/conv1/weight"].shape[1], d_model=d,
        encoder_layers=count("encoder"), decoder_layers=count("decoder"),
        encoder_attention_heads=int(v["encoder/num_heads"]), decoder_attention_heads=int(v["decoder/num_heads"]),
        encoder_ffn_dim=v["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=v["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=v["decoder/position_encodings/encodings"].shape[0],
        pad_token_id=eos, bos_token_id=eos, eos_token_id=eos, decoder_start_token_id=start,
        suppress_tokens=ct2.get("suppress_ids", []), begin_suppress_tokens=ct2.get("suppress_ids_begin", []),
        scale_embedding=bool(int(v.get("decoder/scale_embeddings", np.array(0)))), tie_word_embeddings=True)


def whisper_state(ckpt: Checkpoint, n_enc: int, n_dec: int) -> dict[str, torch.Tensor]:
    """Hugging Face state dict (fp32) from the CTranslate2 variables."""
    v = {k: a for k, a in ckpt.variables.items() if a.ndim}
    out: dict[str, np.ndarray] = {}
    for side, n in (("encoder", n_enc), ("decoder", n_dec)):
        out[f"model.{side}.embed_positions.weight"] = v[f"{side}/position_encodings/encodings"]
        _norm(out, v, f"{side}/layer_norm", f"model.{side}.layer_norm")
        for i in range(n):
            _layer(out, v, side, i)
    for conv in ("conv1", "conv2"):
        for p in ("weight", "bias"):
            out[f"model.encoder.{conv}.{p}"] = v[f"encoder/{conv}/{p}"]
    out["model.decoder.embed_tokens.weight"] = v["decoder/embeddings/weight"]
    return {k: torch.from_numpy(np.asarray(a, dtype=np.float32).copy()) for k, a in out.items()}


def _layer(out: dict, v: dict, side: str, i: int) -> None:
    src, dst = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
    _fused(out, v, f"{src}/self_attention/linear_0", f"{dst}.self_attn", ("q", "k", "v"))
    _linear(out, v, f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj")
    _norm(out, v, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
    if side == "decoder":
        _linear(out, v, f"{src}/attention/linear_0", f"{dst}.encoder_attn.q_proj")
        _fused(out, v, f"{src}/attention/linear_1", f"{dst}.encoder_attn", ("k", "v"))
        _linear(out, v, f"{src}/attention/linear_2", f"{dst}.encoder_attn.out_proj")
        _norm(out, v, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm")
    _linear(out, v, f"{src}/ffn/linear_0", f"{dst}.fc1")
    _linear(out, v, f"{src}/ffn/linear_1", f"{dst}.fc2")
    _norm(out, v, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")


def _fused(out: dict, v: dict, src: str, dst: str, names: tuple[str, ...]) -> None:
    """Stacked (len(names) * d, d) projections -> one per name; Whisper's k has no bias."""
    weights = np.split(v[f"{src}/weight"], len(names))
    biases = np.split(v[f"{src}/bias"], len(names))
    for name, w, b in zip(names, weights, biases):
        out[f"{dst}.{name}_proj.weight"] = w
        if name != "k":
            out[f"{dst}.{name}_proj.bias"] = b


def _linear(out: dict, v: dict, src: str, dst: str) -> None:
    out[f"{dst}.weight"], out[f"{dst}.bias"] = v[f"{src}/weight"], v[f"{src}/bias"]


def _norm(out: dict, v: dict, src: str, dst: str) -> None:
    for ct2, hf in NORM.items():
        out[f"{dst}.{hf}"] = v[f"{src}/{ct2}"]


def import_whisper(src: str | Path, out: str | Path) -> Path:
    """Write the Hugging Face folder OUT (atomically) from the CTranslate2 folder SRC."""
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperTokenizerFast

    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ModelLoadError(f"{src}: not a folder; pass the CTranslate2 model folder (model.bin, config.json, tokenizer.json)")
    ckpt = read_model_bin(model_files(src))
    if ckpt.spec != "WhisperSpec":
        raise ModelLoadError(f"{src}: a CTranslate2 {ckpt.spec} model; only Whisper (WhisperSpec) is imported")
    ct2 = json.loads((src / "config.json").read_text()) if (src / "config.json").is_file() else {}
    if not (src / "tokenizer.json").is_file():
        raise ModelLoadError(f"{src}: no tokenizer.json (faster-whisper folders ship one next to model.bin)")
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(src / "tokenizer.json"))
    config = whisper_config(ckpt, ct2, tokenizer.convert_tokens_to_ids("<|endoftext|>"),
                            tokenizer.convert_tokens_to_ids("<|startoftranscript|>"))
    model = WhisperForConditionalGeneration(config)
    state = whisper_state(ckpt, config.encoder_layers, config.decoder_layers)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"proj_out.weight"}:
        raise ModelLoadError(f"{src}: weights do not fit Whisper (missing {sorted(missing)[:3]}, "
                             f"unexpected {sorted(unexpected)[:3]})")
    model.tie_weights()
    features = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    _generation_config(model, tokenizer, ct2)
    with atomic_path(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        features.save_pretrained(tmp)
    return out


def _generation_config(model, tokenizer, ct2: dict) -> None:
    """What `generate(language=..., task=...)` needs: language and task token ids, timestamps."""
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in tokenizer.get_vocab() if tok.startswith("<|")}
    langs = set(ct2.get("lang_ids", []))
    g = model.generation_config
    g.lang_to_id = {tok: i for tok, i in ids.items() if i in langs}
    g.task_to_id = {t: ids[f"<|{t}|>"] for t in ("transcribe", "translate") if f"<|{t}|>" in ids}
    g.is_multilingual = bool(g.lang_to_id)
    g.no_timestamps_token_id = ids.get("<|notimestamps|>")
    g.decoder_start_token_id = model.config.decoder_start_token_id
    g.suppress_tokens, g.begin_suppress_tokens = model.config.suppress_tokens, model.config.begin_suppress_tokens
    g.alignment_heads = ct2.get("alignment_heads")
    g.max_length = model.config.max_target_positions
    g.pad_token_id = g.eos_token_id = g.bos_token_id = model.config.eos_token_id
    g._from_model_config = False  # else from_pretrained rebuilds it from config.json, dropping the above
