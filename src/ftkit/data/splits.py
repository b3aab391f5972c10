"""Seeded, stratified hold-out splits."""
from __future__ import annotations

import logging
from collections import Counter

import numpy as np
from sklearn.model_selection import train_test_split

from ftkit.errors import DataError

log = logging.getLogger(__name__)


def holdout(labels: list, size: float, seed: int) -> tuple[list[int], list[int]]:
    """Split row indices into (keep, held_out), stratified by label when every class allows it.

    Stratification needs at least two examples per class; otherwise the split is random and
    a warning says which classes were too small.
    """
    index = np.arange(len(labels))
    counts = Counter(labels)
    rare = [str(label) for label, n in counts.items() if n < 2]
    stratify = None if rare else labels
    if rare:
        log.warning("classes with a single example (%s): split is random, not stratified", ", ".join(rare[:5]))
    n_held = max(1, int(round(size * len(labels))))
    if stratify is not None and n_held < len(counts):
        n_held = len(counts)  # stratified splits need one row per class at least
    try:
        keep, held = train_test_split(index, test_size=n_held, random_state=seed, stratify=stratify)
    except ValueError as err:  # too few rows for the share asked, or for one row per class
        raise DataError(f"cannot hold out {size:.0%} of {len(labels)} rows ({err}); pass --validation/"
                        "--test files, or --set data.validation_size=0 / data.test_size=0") from None
    return sorted(keep.tolist()), sorted(held.tolist())
