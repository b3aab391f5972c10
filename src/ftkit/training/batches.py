"""Which examples go in which batch, per epoch, reproducibly.

The order of epoch e depends only on (seed, e), never on RNG state consumed elsewhere, so a
resumed run rebuilds exactly the batches it had and skips the ones already trained on.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

MEGABATCH = 50  # batches sorted together: enough to cut padding, few enough to stay random


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int,
                  group_by_length: bool, weights: Optional[np.ndarray] = None) -> list[np.ndarray]:
    """Batches of row indices for one epoch. With `weights` (oversampling) an epoch is as many
    rows drawn with replacement in proportion to them, so rare classes recur within the epoch."""
    rng = np.random.default_rng([seed, epoch])
    n = len(lengths)
    order = rng.permutation(n) if weights is None else rng.choice(n, size=n, replace=True, p=weights)
    if group_by_length:
        # Sort within shuffled mega-batches (as HF's LengthGroupedSampler), then shuffle the
        # batches so long and short ones alternate over the epoch.
        span = batch_size * MEGABATCH
        chunks = [order[i:i + span] for i in range(0, len(order), span)]
        order = np.concatenate([c[np.argsort(-lengths[c], kind="stable")] for c in chunks])
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if group_by_length:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Per-row draw probabilities that give every class the same expected share of an epoch."""
    labels = np.asarray(labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    weights = 1.0 / counts[inverse]
    return weights / weights.sum()


def shard(rows: np.ndarray, rank: int, size: int) -> tuple[np.ndarray, float]:
    """Worker `rank`'s share of one global batch (of `size` workers) and the weight of its mean loss.

    Contiguous slices, the first len(rows) % size one row longer, so the shards tile the batch the
    one-process loop trains on. The weight (its share of the rows) makes the summed gradients of
    the workers' mean losses the gradient of the whole batch's mean loss, whatever the remainder.
    A worker left without a row (a last batch smaller than the team) trains on the batch's first
    row with weight 0: it still takes part in the gradient sum every worker waits for."""
    part = np.array_split(np.asarray(rows), size)[rank]
    if len(part) == 0:
        return np.asarray(rows)[:1], 0.0
    return part, len(part) / len(rows)
