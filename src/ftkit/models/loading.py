"""Resolve a model name to a source, explicitly: zoo name, local folder, or hub id.

Nothing is guessed: a name that is neither a zoo entry, an existing folder, nor an
``org/name`` hub id is an error that says how to fix it. Hub ids are only tried when the user
names one, and offline the error says so.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

from ftkit.errors import ModelLoadError
from ftkit.models.zoo import ZOO

HUB_ID = re.compile(r"^(hf-hub:)?[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "zoo", "local" or "hub"
    location: str  # folder path or hub id, what from_pretrained receives
    name: str  # what the user typed

    def describe(self) -> str:
        return {"zoo": f"zoo model {self.name} ({self.location})",
                "local": f"local folder {self.location}",
                "hub": f"Hugging Face Hub id {self.location}"}[self.kind]


def resolve(name: str) -> ModelSource:
    if name in ZOO:
        return ModelSource("zoo", str(ZOO.get(name).path()), name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"model folder {path} has no config.json; "
                                 "expected a Hugging Face model folder (save_pretrained output)")
        return ModelSource("local", str(path.resolve()), name)
    if path.exists():
        raise ModelLoadError(f"model {name!r} is a file; pass the folder that holds config.json")
    if HUB_ID.match(name) and not name.startswith((".", "/", "~")):
        return ModelSource("hub", name.removeprefix("hf-hub:"), name)
    known = ", ".join(ZOO.names())
    raise ModelLoadError(f"unknown model {name!r}: not a zoo name ({known}; see `ftkit models`), "
                         "not an existing folder, and not an org/name hub id")


def hub_failure(source: ModelSource, err: Exception) -> ModelLoadError:
    """Turn a failed download into an error that says what to do offline."""
    if source.kind != "hub":
        return ModelLoadError(f"cannot load {source.describe()}: {err}")
    return ModelLoadError(
        f"cannot load {source.location!r} from the Hugging Face Hub (offline or not found: "
        f"{type(err).__name__}); download it where you have network and pass the local folder, "
        "or use a zoo model (`ftkit models`)")


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' own load report and progress bars; ftkit reports what matters
    (a new head is expected, not a warning)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def randomize(model) -> None:
    """Replace every weight with a fresh random initialisation: the same architecture trained
    from scratch, the baseline that shows what pretraining is worth. Hugging Face models use
    their own initialiser (e.g. BERT's normal(0, 0.02)); other modules their reset_parameters()."""
    import torch
    from transformers import PreTrainedModel

    if isinstance(model, PreTrainedModel):
        with quiet_transformers():
            fresh = type(model)(model.config)
        own = model.state_dict().keys()  # a model on its own pooling has no [CLS] pooler weights
        model.load_state_dict({k: v for k, v in fresh.state_dict().items() if k in own})
        return
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()


def original_head_state(folder: Path, heads: list[str]) -> dict:
    """The pretrained weights in `folder` of the modules named `heads` (those that form the new
    head: strategies.groups.head_modules), by their names in the model; empty when the folder has
    none (a bare encoder), so the original task head can be put back for retention."""
    from safetensors.torch import load_file  # torch: loaded on first use

    prefixes = tuple(f"{name}." for name in heads)
    out = {}
    for file in folder.glob("*.safetensors"):
        out.update({k: v for k, v in load_file(str(file)).items() if k.startswith(prefixes)})
    return out
