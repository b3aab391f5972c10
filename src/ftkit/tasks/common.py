"""Model-side helpers shared by several tasks: class weights for the loss, loading a LoRA run's
base model + adapter, and exporting plain transformers weights. Imports no task module."""
from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np

from ftkit.lazy import torch  # loaded at first use
from ftkit.models.loading import quiet_transformers, resolve
from ftkit.errors import FtkitError, ModelLoadError


def class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """n / (classes * count): each class contributes equally to the loss (sklearn's 'balanced')."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    return torch.tensor(len(labels) / (n_classes * np.maximum(counts, 1)), dtype=torch.float32)


def load_adapter(folder: Path, meta: dict, build):
    """A LoRA run: the base model (zoo name, else the folder it was trained from) + the adapter;
    `build(source, labels, remote) -> (model, processor)` makes the base with a task head."""
    from peft import PeftModel

    try:
        source = resolve(meta["base_model"])
    except FtkitError:
        source = resolve(meta["base_model_location"])
    try:
        base, _ = build(source, meta["labels"], meta.get("trust_remote_code", False))
    except FtkitError as err:
        raise ModelLoadError(f"{folder} holds a LoRA adapter; its base model is needed too: {err}") from None
    with quiet_transformers(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers deprecations seen through peft
        return PeftModel.from_pretrained(base, folder)


def export_model(model, processor, meta: dict, folder: Path) -> None:
    """Plain transformers weights; a LoRA adapter (and its head) is merged into the base."""
    if meta.get("adapter"):
        model = copy.deepcopy(model).merge_and_unload()
    with quiet_transformers():
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
    meta = {**meta, "adapter": False, "merged_adapter": bool(meta.get("adapter"))}
    (folder / "ftkit.json").write_text(json.dumps(meta, indent=2))
