"""Speech-recognition metrics: corpus WER and CER, per-utterance error counts and bootstrap intervals.

Alignment is jiwer's (rapidfuzz Levenshtein), never a hand-written edit distance. Both sides are
normalised first (`eval.normalize`), because a model that writes "Hello, World!" for "hello world"
has not misheard anything.

Empty references (silence, or "?" once punctuation is stripped) are scored here, not by jiwer:
older jiwer versions raise on them. Their hypothesis words are insertions and they add no reference
words. Rates divide by max(1, reference words), jiwer 4's own convention, so a corpus with no
reference words scores 0.0 when every hypothesis is empty too and the raw error count otherwise
(finite, so it survives JSON and bootstrap percentiles).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ftkit.errors import ConfigError
from ftkit.evaluation.bootstrap import bootstrap_ci, described

KINDS = ("none", "lowercase", "basic", "english")


def normalizer(kind: str) -> Callable[[str], str]:
    """The text normaliser for `eval.normalize`; every kind also strips and collapses whitespace."""
    if kind == "none":
        base = str
    elif kind == "lowercase":
        base = str.lower
    elif kind == "basic":
        from transformers.models.whisper.english_normalizer import BasicTextNormalizer

        base = BasicTextNormalizer()
    elif kind == "english":
        from transformers.models.whisper import english_normalizer as en

        base = en.EnglishTextNormalizer(_spelling_map(Path(en.__file__).with_name("normalizer.json")))
    else:
        raise ConfigError(f"--set eval.normalize={kind!r}: choose one of {', '.join(KINDS)}")
    return lambda text: " ".join(base(text).split())


def _spelling_map(path: Path) -> dict:
    # Whisper's British->American map ships with checkpoints, not with transformers; without it
    # the numbers, contractions and fillers are still normalised.
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _normalised(references: list[str], hypotheses: list[str], normalize: str) -> tuple[list[str], list[str]]:
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    norm = normalizer(normalize)
    return [norm(r) for r in references], [norm(h) for h in hypotheses]


def _align(refs: list[str], hyps: list[str], level: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-utterance errors (n,), reference lengths (n,) and corpus [S, D, I] at `level`
    ("words" or "chars"); `refs`/`hyps` are already normalised."""
    import jiwer

    tokens = str.split if level == "words" else list
    errors = np.array([len(tokens(h)) for h in hyps], dtype=np.int64)  # right for empty references
    lengths = np.zeros(len(refs), dtype=np.int64)
    sdi = np.array([0, 0, errors[[not r for r in refs]].sum()], dtype=np.int64)
    rows = [i for i, r in enumerate(refs) if r]
    if rows:
        process = jiwer.process_words if level == "words" else jiwer.process_characters
        out = process([refs[i] for i in rows], [hyps[i] for i in rows])
        for i, ref, chunks in zip(rows, out.references, out.alignments):
            # a substitution spans equal lengths; a deletion or insertion has one side empty
            errors[i] = sum(max(c.ref_end_idx - c.ref_start_idx, c.hyp_end_idx - c.hyp_start_idx)
                            for c in chunks if c.type != "equal")
            lengths[i] = len(ref)
        sdi += [out.substitutions, out.deletions, out.insertions]
    return errors, lengths, sdi


def _rate(errors: np.ndarray, lengths: np.ndarray) -> float:
    return float(errors.sum() / max(1, lengths.sum()))


def asr_metrics(references: list[str], hypotheses: list[str], normalize: str = "basic") -> dict:
    """Corpus-level WER, CER, word-level S/D/I counts and the exact-match share."""
    refs, hyps = _normalised(references, hypotheses, normalize)
    word_errors, words, (subs, dels, ins) = _align(refs, hyps, "words")
    char_errors, chars, _ = _align(refs, hyps, "chars")
    return {
        "wer": _rate(word_errors, words), "cer": _rate(char_errors, chars), "n": len(refs),
        "words": int(words.sum()), "substitutions": int(subs), "deletions": int(dels), "insertions": int(ins),
        "exact_match": float(np.mean([r == h for r, h in zip(refs, hyps)])) if refs else 0.0,
    }


def utterance_errors(references: list[str], hypotheses: list[str], normalize: str = "basic") -> dict[str, np.ndarray]:
    """Per-utterance int arrays (n,): corpus WER = word_errors.sum() / words.sum(), CER likewise."""
    refs, hyps = _normalised(references, hypotheses, normalize)
    word_errors, words, _ = _align(refs, hyps, "words")
    char_errors, chars, _ = _align(refs, hyps, "chars")
    return {"word_errors": word_errors, "words": words, "char_errors": char_errors, "chars": chars}


def asr_ci(references: list[str], hypotheses: list[str], normalize: str = "basic", n_boot: int = 1000,
           level: float = 0.95, seed: int = 0) -> dict:
    """Percentile intervals of corpus WER and CER, resampling utterances (errors within one
    utterance are not independent, so the word is not the unit)."""
    counts = utterance_errors(references, hypotheses, normalize)

    def score(idx: np.ndarray) -> dict:
        return {"wer": _rate(counts["word_errors"][idx], counts["words"][idx]),
                "cer": _rate(counts["char_errors"][idx], counts["chars"][idx])}

    return described(bootstrap_ci(score, len(references), n_boot, level, seed), level, n_boot, "utterance")


def paired_change_ci(references: list[str], before: list[str], after: list[str], normalize: str = "basic",
                     n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> dict:
    """Intervals of the change in corpus WER and CER (after - before) when two systems transcribe
    the same utterances: both are resampled together, so the interval is of the difference itself
    (far narrower than comparing two separate intervals, whose noise is mostly shared)."""
    a = utterance_errors(references, before, normalize)
    b = utterance_errors(references, after, normalize)

    def score(idx: np.ndarray) -> dict:
        return {"wer": _rate(b["word_errors"][idx], b["words"][idx]) - _rate(a["word_errors"][idx], a["words"][idx]),
                "cer": _rate(b["char_errors"][idx], b["chars"][idx]) - _rate(a["char_errors"][idx], a["chars"][idx])}

    return described(bootstrap_ci(score, len(references), n_boot, level, seed), level, n_boot, "utterance")
