"""Weight averaging: a greedy soup of the best validation checkpoints (`train.average: greedy-soup`).

While training, the loop keeps the weights of its `train.average_top` best validations on disk
(RUN_DIR/checkpoints/snapshot-STEP.safetensors; the list, best first, is part of LoopState, so a
resumed run keeps the same ones). At the end, after the best weights are restored, the soup starts
from the best snapshot and adds each next-best one when the average of the kept snapshots scores at
least as well on validation (Wortsman et al. 2022, "Model soups"; AutoGluon-multimodal averages its
best checkpoints by default). Only the validation split decides, so the test split stays unseen; a
soup that does not improve on the best single snapshot is not used.

Float tensors are averaged in float32; integer buffers (position ids, BatchNorm counters) are
taken from the best snapshot.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file, save_model

from ftkit.evaluation.metrics import better
from ftkit.io import atomic_path
from ftkit.training import checkpoint

log = logging.getLogger(__name__)


def snapshot_path(folder: Path, step: int) -> Path:
    return folder / f"snapshot-{step:06d}.safetensors"


def keep_snapshot(model: torch.nn.Module, folder: Path, kept: list[dict], step: int, value: float,
                  metric: str, top: int) -> list[dict]:
    """The snapshots to keep after the validation at `step` scored `value` (best first, at most
    `top`): this step's weights are written when they make the list, a snapshot that drops out is
    deleted."""
    ranked = sorted(kept + [{"step": step, "value": value}],
                    key=functools.cmp_to_key(lambda a, b: _order(metric, a["value"], b["value"])))
    keep, dropped = ranked[:top], ranked[top:]
    if any(entry["step"] == step for entry in keep):
        with atomic_path(snapshot_path(folder, step)) as tmp:
            save_model(model, str(tmp))
    for entry in dropped:
        snapshot_path(folder, entry["step"]).unlink(missing_ok=True)
    return keep


def _order(metric: str, a: float, b: float) -> int:
    """Best first; ties keep the earlier snapshot first (sorted is stable)."""
    return -1 if better(metric, a, b) else 1 if better(metric, b, a) else 0


def greedy_soup(model: torch.nn.Module, folder: Path, kept: list[dict], metric: str,
                score: Callable[[torch.nn.Module], float]) -> dict:
    """Greedy soup of the kept snapshots (best first) -> its record. The model ends with the soup's
    weights when it scores at least the best snapshot's value on validation and has 2+ members;
    otherwise with the best snapshot's (what restore_best gave it)."""
    present = [e for e in kept if snapshot_path(folder, e["step"]).is_file()]
    if len(present) < 2:
        return {"method": "greedy-soup", "members": [e["step"] for e in present], "used": False}
    members, best_value = [present[0]], present[0]["value"]
    value, tried = best_value, []
    for candidate in present[1:]:
        _load_average(model, folder, members + [candidate])
        candidate_value = score(model)
        tried.append({"step": candidate["step"], "soup_value": candidate_value})
        if not better(metric, value, candidate_value):  # at least as good: keep it in the soup
            members, value = members + [candidate], candidate_value
    used = len(members) > 1
    _load_average(model, folder, members if used else members[:1])
    log.info("weight averaging: %s of snapshots %s (validation %s %.4f; best single %.4f)",
             "soup" if used else "no soup, best single", [m["step"] for m in members], metric, value, best_value)
    return {"method": "greedy-soup", "members": [m["step"] for m in members], "tried": tried,
            "validation": {"best_single": best_value, "soup": value}, "used": used}


def _load_average(model: torch.nn.Module, folder: Path, members: list[dict]) -> None:
    """The model with the mean of these snapshots' weights."""
    first = load_file(str(snapshot_path(folder, members[0]["step"])))
    total = {k: v.float() if v.is_floating_point() else v for k, v in first.items()}
    for entry in members[1:]:
        for k, v in load_file(str(snapshot_path(folder, entry["step"]))).items():
            if v.is_floating_point():
                total[k] += v.float()
    mean = {k: (v / len(members)).to(first[k].dtype) if v.is_floating_point() else v for k, v in total.items()}
    path = folder / "soup.safetensors"
    with atomic_path(path) as tmp:
        save_file(mean, str(tmp))
    checkpoint.load_weights(model, path)
