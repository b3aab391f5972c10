"""The Hugging Face fast tokenizer's calls that the text tasks make, on the Rust `tokenizers`
library alone: `AutoTokenizer` imports torch (transformers' configuration module does), and an
ONNX predictor for text should start without it. Export time checks that both give the same
probabilities (the parity check), so a tokenizer this adapter does not reproduce is caught there."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ftkit.errors import ModelLoadError


class Encodings:
    """What the task encoders read from a BatchEncoding: `enc[key]` and `enc.word_ids(i)`."""

    def __init__(self, encodings: list, samples: list[int], token_types: bool = False):
        self._encodings = encodings
        self.data = {"input_ids": [e.ids for e in encodings], "attention_mask": [e.attention_mask for e in encodings],
                     "offset_mapping": [e.offsets for e in encodings], "overflow_to_sample_mapping": samples}
        if token_types:  # as the HF tokenizer: only when the model takes them (its model_input_names)
            self.data["token_type_ids"] = [e.type_ids for e in encodings]

    def __getitem__(self, key: str):
        return self.data[key]

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def word_ids(self, index: int) -> list[Optional[int]]:
        return self._encodings[index].word_ids


class RustTokenizer:
    """tokenizer.json plus the settings the HF wrapper adds per call (truncation side, pad id,
    model_max_length), recorded in ftkit.json's "onnx" section at export."""

    is_fast = True

    def __init__(self, folder: Path, settings: dict):
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.pad_token_id: int = settings["pad_id"]
        self.model_max_length: int = settings["model_max_length"]
        self.truncation_side: str = settings.get("truncation_side", "right")
        self.sep_token: Optional[str] = settings.get("sep_token")
        self.token_types: bool = settings.get("token_types", False)

    def __call__(self, inputs: list, text_pair: Optional[list] = None, *, truncation: bool | str = False,
                 max_length: Optional[int] = None, stride: int = 0, is_split_into_words: bool = False,
                 return_overflowing_tokens: bool = False, return_offsets_mapping: bool = False) -> Encodings:
        """As `PreTrainedTokenizerFast.__call__` without padding: overflowing windows follow their
        sentence, `overflow_to_sample_mapping` names it (offsets are always there: they cost nothing).
        `text_pair`: the second texts of sentence pairs (truncation is longest-first either way)."""
        backend = self._tokenizer
        backend.no_padding()
        if truncation:
            backend.enable_truncation(max_length or self.model_max_length, stride=stride, strategy="longest_first",
                                      direction=self.truncation_side)
        else:
            backend.no_truncation()
        items = list(inputs) if text_pair is None else list(zip(inputs, text_pair))
        encoded = backend.encode_batch(items, is_pretokenized=is_split_into_words, add_special_tokens=True)
        flat, samples = [], []
        for i, enc in enumerate(encoded):
            windows = [enc, *enc.overflowing] if return_overflowing_tokens else [enc]
            flat += windows
            samples += [i] * len(windows)
        return Encodings(flat, samples, self.token_types)


def tokenizer_settings(tokenizer) -> dict:
    """What RustTokenizer needs beyond tokenizer.json, read off the HF tokenizer at export."""
    return {"pad_id": tokenizer.pad_token_id, "model_max_length": min(int(tokenizer.model_max_length), 2**31 - 1),
            "truncation_side": tokenizer.truncation_side, "rust": bool(getattr(tokenizer, "is_fast", False)),
            "sep_token": tokenizer.sep_token, "token_types": "token_type_ids" in tokenizer.model_input_names}


def load_tokenizer(folder: Path, settings: dict):
    """RustTokenizer when the folder has tokenizer.json (a fast tokenizer saved it), else the HF
    tokenizer (slow tokenizers: that path imports torch)."""
    if settings.get("rust") and (folder / "tokenizer.json").is_file():
        try:
            return RustTokenizer(folder, settings)
        except Exception as err:  # noqa: BLE001  (tokenizers raises plain Exception for a bad file)
            raise ModelLoadError(f"{folder / 'tokenizer.json'}: cannot load the tokenizer ({err})") from None
    from transformers import AutoTokenizer

    from ftkit.models.loading import quiet_transformers

    with quiet_transformers():
        return AutoTokenizer.from_pretrained(folder)
