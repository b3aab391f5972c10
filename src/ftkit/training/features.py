"""Features of a frozen body, computed once and cached on disk (linear probe, LP-FT).

The features of an example are what the task head receives: a forward pre-hook on the head
module records its input while the whole model runs in eval mode. The cache file is keyed by
a hash of the body's weights and buffers, the head's name, the encoded inputs (so the data and
every preprocessing choice: tokenizer, max length, ...) and the precision, so any change to
the model or the data computes fresh features, and a second run with the same ones reuses them.

    $FTKIT_CACHE_DIR/features/<key>.safetensors   (default ~/.cache/ftkit)
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ftkit.models.pooler import pooling_key
from ftkit.training.device import autocast
from ftkit.training.progress import Progress

log = logging.getLogger(__name__)


class NotCacheable(Exception):
    """The head does not take one feature vector per example (e.g. one per token)."""


def cache_dir() -> Path:
    root = os.environ.get("FTKIT_CACHE_DIR") or Path.home() / ".cache" / "ftkit"
    return Path(root) / "features"


def body_fingerprint(model: torch.nn.Module, head: str) -> str:
    """Hash of every weight and buffer outside the head: a changed model means new features."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        if name.split(".")[0] == head:
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    pooling = pooling_key(model)  # mean and max pooling have no weights to tell them apart
    if pooling is not None:
        digest.update(pooling.encode())
    return digest.hexdigest()


def data_fingerprint(data) -> str:
    """Hash of the encoded inputs (tasks implement ``fingerprint()`` on their encoded splits)."""
    return data.fingerprint()


@dataclass
class FeatureData:
    """Cached features as an encoded split: the loop batches it like any other data."""

    features: np.ndarray  # (n, dim) float32
    labels: np.ndarray  # (n,) class ids
    trailing: tuple = ()  # (1, 1) when the head takes (n, dim, 1, 1)

    @property
    def lengths(self) -> np.ndarray:
        return np.ones(len(self.features), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.features)

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        return {"features": self.tensor(indices), "labels": torch.from_numpy(self.labels[indices])}

    def tensor(self, indices) -> torch.Tensor:
        """Rows as the head receives them (pooled conv maps get their (1, 1) back)."""
        rows = torch.from_numpy(self.features[indices])
        return rows.view(*rows.shape, *self.trailing)

    def subset(self, rows) -> "FeatureData":
        return FeatureData(self.features[rows], self.labels[rows], self.trailing)


@torch.inference_mode()
def extract(model: torch.nn.Module, head: str, data, batch_size: int, precision: str) -> tuple[np.ndarray, tuple]:
    """(n, dim) inputs of the head module for every example of `data`, in data order, and the
    trailing (1, 1) of pooled conv maps, if any."""
    from ftkit.strategies.groups import is_encoder_decoder

    if is_encoder_decoder(model):  # its readout (the output layer) scores every token
        raise NotCacheable("the output layer of a text decoder scores every token, not one vector per example")
    model.eval()
    device = next(model.parameters()).device
    captured: list[torch.Tensor] = []
    hook = getattr(model, head).register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    order = np.argsort(-data.lengths, kind="stable")  # longest first: little padding per batch
    out, trailing = None, ()
    report = Progress(len(order), "features")
    try:
        for start in range(0, len(order), batch_size):
            report(start)
            idx = order[start:start + batch_size]
            batch = {k: v.to(device) for k, v in data.batch(idx).items() if k != "labels"}
            captured.clear()
            with autocast(precision, device):
                model(**batch)
            feats = captured[0]
            if feats.ndim > 2 and all(d == 1 for d in feats.shape[2:]):  # pooled conv maps (n, c, 1, 1)
                trailing = tuple(feats.shape[2:])
                feats = feats.flatten(1)
            if feats.ndim != 2 or feats.shape[0] != len(idx):
                raise NotCacheable(f"the head {head!r} takes inputs of shape {tuple(feats.shape)}, "
                                   "not one feature vector per example")
            if out is None:
                out = np.zeros((len(data), feats.shape[1]), dtype=np.float32)
            out[idx] = feats.float().cpu().numpy()
        report(len(order))
    finally:
        hook.remove()
    return out, trailing


def cached_features(model, head: str, body: str, data, batch_size: int, precision: str,
                    name: str) -> tuple[np.ndarray, tuple, dict]:
    """Features from the cache when the same body saw the same inputs before, else computed and
    stored. Returns them with a record for the summary (hit or miss, seconds, file)."""
    key = hashlib.blake2b(f"{body}|{head}|{data_fingerprint(data)}|{precision}".encode(),
                          digest_size=16).hexdigest()
    path = cache_dir() / f"{key}.safetensors"
    tick = time.perf_counter()
    if path.is_file():
        try:
            with safe_open(str(path), "pt") as f:
                feats = f.get_tensor("features").numpy()
                trailing = tuple(json.loads((f.metadata() or {}).get("trailing", "[]")))
            if len(feats) == len(data):
                log.info("%s features: reused %s", name, path)
                return feats, trailing, _record("hit", path, tick, feats)
        except Exception as err:  # noqa: BLE001  (a damaged cache file is recomputed, not fatal)
            log.warning("%s: unreadable feature cache (%s); computing again", path, err)
    feats, trailing = extract(model, head, data, batch_size, precision)
    _store(path, feats, trailing)
    log.info("%s features: computed %d x %d in %.1fs, cached in %s", name, *feats.shape,
             time.perf_counter() - tick, path)
    return feats, trailing, _record("miss", path, tick, feats)


def _record(status: str, path: Path, tick: float, feats: np.ndarray) -> dict:
    return {"cache": status, "seconds": round(time.perf_counter() - tick, 3), "file": str(path),
            "shape": list(feats.shape)}


def _store(path: Path, feats: np.ndarray, trailing: tuple) -> None:
    # Written under a name unique to this process, then renamed: concurrent runs sharing the
    # cache never see (or clobber) a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file({"features": torch.from_numpy(np.ascontiguousarray(feats))}, str(tmp),
                  metadata={"trailing": json.dumps(list(trailing))})
        os.replace(tmp, path)
    except OSError as err:
        log.warning("could not cache features in %s (%s); they will be computed again next time", path, err)
    finally:
        tmp.unlink(missing_ok=True)
