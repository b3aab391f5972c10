"""Duplicate detection for the data doctor: exact, normalised and near-duplicate inputs.

Every input gets three views, computed once in O(n):

- an exact key (the text itself; an image or audio file's bytes),
- a normalised key (text lowercased, punctuation and spacing removed; an image's decoded pixels;
  a clip's decoded samples, mono and 16-bit, at the file's own rate),
- a near-duplicate signature: MinHash over word bigrams (text, datasketch) or a 64-bit
  perceptual hash (images, imagehash's pHash, which depends only on Pillow/numpy/scipy/PyWavelets,
  no torch); none for audio (near-duplicate audio is not checked).

Near-duplicate candidates come from locality-sensitive hashing, run at a lower threshold than
asked for (better recall: a pair just above the threshold is otherwise missed about half the
time), and each candidate pair is then confirmed exactly (Jaccard of the shingle sets, or the
Hamming distance of the hashes), so reported pairs are never LSH false positives.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Optional

from ftkit.data.text_columns import SEGMENT_MARK

NUM_PERM = 64  # MinHash permutations: ~0.3 s for 3,000 texts, Jaccard estimates within ~0.06
LSH_SLACK = 0.1  # LSH threshold = asked threshold - slack; candidates are then verified exactly
IMAGE_BITS = 64  # pHash 8x8
IMAGE_MAX_DISTANCE = 4  # Hamming distance (of 64 bits) below which two images count as near-duplicates

_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """'  The FILM, was great!! ' -> 'the film was great' (case, accents' width, punctuation, spaces).
    The columns of a multi-column input (joined with text_columns.SEGMENT_MARK) are normalised one by
    one and keep the mark between them: ("a b", "c") and ("a", "b c") stay different inputs."""
    if SEGMENT_MARK in text:
        return SEGMENT_MARK.join(normalise(side) for side in text.split(SEGMENT_MARK))
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_PUNCT.sub(" ", text).split())


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def shingles(norm: str) -> set[str]:
    """Word bigrams of a normalised text (the single word for one-word texts)."""
    words = norm.split()
    if len(words) < 2:
        return {norm}
    return {f"{a} {b}" for a, b in zip(words, words[1:])}


@dataclass
class Keys:
    """Per-input keys over all splits concatenated (index = position in that concatenation)."""

    exact: list[str]
    normalised: list[str]
    near: list  # shingle sets (text) or int hashes (images); None where unreadable, and for audio


def text_keys(texts: list[str]) -> Keys:
    norms = [normalise(t) for t in texts]
    return Keys([digest(t.encode("utf-8")) for t in texts], [digest(n.encode("utf-8")) for n in norms],
                [shingles(n) for n in norms])


def image_keys(paths: list[str]) -> Keys:
    exact, pixels, near = [], [], []
    for path in paths:
        with open(path, "rb") as f:
            exact.append(digest(f.read()))
        decoded = _pixels_and_phash(path)
        pixels.append(decoded[0] if decoded else exact[-1])
        near.append(decoded[1] if decoded else None)
    return Keys(exact, pixels, near)


def _pixels_and_phash(path: str) -> Optional[tuple[str, int]]:
    import imagehash
    from PIL import Image

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except Exception:  # noqa: BLE001  (unreadable images are the schema check's business)
        return None
    # pixels: the same picture saved as PNG and as BMP is the same input to the model
    return digest(rgb.tobytes() + repr(rgb.size).encode()), int(str(imagehash.phash(rgb)), 16)


def audio_keys(paths: list[str]) -> Keys:
    """Audio: the file's bytes, and its decoded samples, so the same clip saved as WAV and as FLAC
    (or as 16-bit and as float WAV) is one input. No near-duplicate signature (`near` is None)."""
    exact, samples = [], []
    for path in paths:
        with open(path, "rb") as f:
            exact.append(digest(f.read()))
        samples.append(_samples_key(path) or exact[-1])
    return Keys(exact, samples, [None] * len(paths))


def _samples_key(path: str) -> Optional[str]:
    """Digest of the clip as int16 mono samples at its native rate (the rate is part of the key:
    the same samples at another rate play at another speed)."""
    import numpy as np

    from ftkit.data.audio import backends

    soundfile, _ = backends()
    try:
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)  # (n, channels)
    except Exception:  # noqa: BLE001  (unreadable clips are the schema check's business)
        return None
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    # 16-bit quantised: a 16-bit source decodes to v / 32768 exactly, so this gives back v
    quantised = np.clip(np.round(mono * 32768.0), -32768, 32767).astype("<i2")
    return digest(quantised.tobytes() + f"@{rate}".encode())


def groups(keys: list[str]) -> list[list[int]]:
    """Indices sharing a key, for keys held by more than one input."""
    by_key: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        by_key.setdefault(key, []).append(i)
    return [members for members in by_key.values() if len(members) > 1]


def near_text_pairs(sets: list[set[str]], threshold: float, seed: int = 1) -> list[tuple[int, int, float]]:
    """(i, j, jaccard) with i < j and Jaccard(shingles) >= threshold, identical sets excluded."""
    from datasketch import MinHash, MinHashLSH

    if len(sets) < 2:
        return []
    hashes = MinHash.bulk([[s.encode("utf-8") for s in sorted(x)] for x in sets], num_perm=NUM_PERM, seed=seed)
    lsh = MinHashLSH(threshold=max(0.05, threshold - LSH_SLACK), num_perm=NUM_PERM)
    pairs = []
    for i, h in enumerate(hashes):
        for j in lsh.query(h):
            a, b = sets[i], sets[j]
            if a == b:
                continue  # same shingles: an exact or normalised duplicate, reported as such
            score = len(a & b) / len(a | b)
            if score >= threshold:
                pairs.append((min(i, j), max(i, j), round(score, 3)))
        lsh.insert(i, h)
    return sorted(pairs)


def near_image_pairs(hashes: list[Optional[int]], max_distance: int = IMAGE_MAX_DISTANCE
                     ) -> list[tuple[int, int, float]]:
    """(i, j, similarity) for perceptual hashes within `max_distance` bits (identical ones excluded).

    Pigeonhole: two 64-bit hashes within d bits agree exactly on at least one of d + 1 bands,
    so bucketing by band finds every such pair without comparing all pairs.
    """
    bands = max_distance + 1
    width = IMAGE_BITS // bands
    seen: set[tuple[int, int]] = set()
    pairs = []
    buckets: dict[tuple[int, int], list[int]] = {}
    for i, h in enumerate(hashes):
        if h is None:
            continue
        for band in range(bands):
            key = (band, (h >> (band * width)) & ((1 << width) - 1))
            for j in buckets.get(key, []):
                if (j, i) in seen:
                    continue
                seen.add((j, i))
                distance = bin(h ^ hashes[j]).count("1")
                if 0 < distance <= max_distance:
                    pairs.append((j, i, round(1 - distance / IMAGE_BITS, 3)))
            buckets.setdefault(key, []).append(i)
    return sorted(pairs)

