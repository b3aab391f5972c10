"""Which examples go in which batch, per epoch, reproducibly.

The order of epoch e depends only on (seed, e), never on RNG state consumed elsewhere, so a
resumed run rebuilds exactly the batches it had and skips the ones already trained on.
"""
from __future__ import annotations

import numpy as np

MEGABATCH = 50  # batches sorted together: enough to cut padding, few enough to stay random


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int,
                  group_by_length: bool) -> list[np.ndarray]:
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
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
