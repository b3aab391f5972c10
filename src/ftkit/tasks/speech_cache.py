"""Encoder outputs of a frozen speech encoder, computed once and cached on disk (frozen-encoder).

With the encoder frozen only the decoder trains, and the encoder (most of the compute: Whisper
runs it over a 30 s window for every clip) would produce the same outputs every epoch. They are
computed once per split and stored as a float16 .npy memory map, read batch by batch, so even
large datasets need little RAM. The key hashes the encoder's weights, the clips and the
precision; a second run on the same data reuses the file.

    $FTKIT_CACHE_DIR/features/encoder-<key>.npy   (default ~/.cache/ftkit)
"""
from __future__ import annotations

import hashlib
import logging
import os
import time

import numpy as np
import torch

from ftkit.training.device import autocast, release_freed_memory
from ftkit.training.features import cache_dir
from ftkit.training.progress import Progress

log = logging.getLogger(__name__)


def encoder_fingerprint(encoder: torch.nn.Module) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def encoder_outputs(model, data, batch_size: int, precision: str, name: str) -> np.ndarray:
    """(clips, frames, hidden) float16 memory map of `model`'s encoder outputs for every clip of `data`."""
    encoder = model.get_encoder()
    key = hashlib.blake2b(f"{encoder_fingerprint(encoder)}|{data.fingerprint()}|{precision}".encode(),
                          digest_size=16).hexdigest()
    path = cache_dir() / f"encoder-{key}.npy"
    if path.is_file():
        try:
            hidden = np.load(path, mmap_mode="r")
            if len(hidden) == len(data):
                log.info("%s encoder outputs: reused %s", name, path)
                return hidden
        except (OSError, ValueError) as err:  # a damaged cache file is recomputed, not fatal
            log.warning("%s: unreadable encoder cache (%s); computing again", path, err)
    tick = time.perf_counter()
    _compute(encoder, data, batch_size, precision, path)
    log.info("%s encoder outputs: %d clips in %.1fs, cached in %s", name, len(data), time.perf_counter() - tick, path)
    return np.load(path, mmap_mode="r")


@torch.inference_mode()
def _compute(encoder, data, batch_size: int, precision: str, path) -> None:
    # Written under a name unique to this process, then renamed: concurrent runs never read a
    # half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    out = None
    report = Progress(len(data), "encoder outputs", "clips")
    try:
        for start in range(0, len(data), batch_size):
            idx = np.arange(start, min(start + batch_size, len(data)))
            report(start)
            features = data.batch(idx)["input_features"].to(device)
            with autocast(precision, device):
                hidden = encoder(features).last_hidden_state  # (batch, frames, hidden)
            if out is None:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16,
                                                shape=(len(data), *hidden.shape[1:]))
            out[idx] = hidden.float().cpu().numpy().astype(np.float16)
        report(len(data))
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        encoder.train(was_training)
        release_freed_memory()
