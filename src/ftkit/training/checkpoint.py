"""Resumable training state, written atomically, without pickle.

Layout of ``RUN_DIR/checkpoints/``::

    step-000200/model.safetensors      trainable and frozen weights
    step-000200/optimizer.safetensors  optimizer moments + torch RNG state
    step-000200/state.json             loop position, scheduler, optimizer groups, history
    latest.json                        {"dir": "step-000200"}; replaced atomically last
    best.safetensors                   weights of the best validation score so far

A checkpoint folder is written under a temporary name and renamed when complete, and
``latest.json`` is replaced only after that, so a kill at any instant leaves the previous
checkpoint usable.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from ftkit.io import atomic_path, write_json


def save_weights_atomic(model: torch.nn.Module, path: Path) -> None:
    with atomic_path(path) as tmp:
        save_model(model, str(tmp))  # handles tied weights, unlike save_file


def load_weights(model: torch.nn.Module, path: Path) -> None:
    load_model(model, str(path), strict=True)


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, slots in state["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"state.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("state."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save(folder: Path, model, optimizer, scheduler, loop_state: dict) -> None:
    """Write a complete checkpoint and point latest.json at it; keep only the newest."""
    name = f"step-{loop_state['global_step']:06d}"
    with atomic_path(folder / name) as tmp:
        tmp.mkdir()
        save_model(model, str(tmp / "model.safetensors"))
        tensors, optim_meta = _optimizer_tensors(optimizer)
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        # numpy's global generator too: some models draw from it in training (Whisper's SpecAugment)
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        tensors["rng.numpy"] = torch.from_numpy(keys.astype(np.int64))
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        state = {"loop": loop_state, "scheduler": scheduler.state_dict(), "optimizer": optim_meta,
                 "numpy_rng": [kind, int(pos), int(has_gauss), float(gauss)]}
        (tmp / "state.json").write_text(json.dumps(state))
    write_json(folder / "latest.json", {"dir": name})
    for old in folder.glob("step-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def latest(folder: Path) -> Path | None:
    pointer = folder / "latest.json"
    if not pointer.is_file():
        return None
    target = folder / json.loads(pointer.read_text())["dir"]
    return target if target.is_dir() else None


def restore(path: Path, model, optimizer, scheduler) -> dict:
    """Load a checkpoint written by `save` into live objects; returns the loop state."""
    load_model(model, str(path / "model.safetensors"), strict=True)
    tensors = load_file(str(path / "optimizer.safetensors"))
    state = json.loads((path / "state.json").read_text())
    _restore_optimizer(optimizer, tensors, state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    if "rng.numpy" in tensors and "numpy_rng" in state:
        kind, pos, has_gauss, gauss = state["numpy_rng"]
        np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    return state["loop"]
