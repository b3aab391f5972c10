"""The pretrained model's own pooling: how one vector per text is made from its token states.

A sentence-transformers folder says how its encoder was trained to be read: 1_Pooling/config.json
(mean over the tokens, the [CLS] token, or the max) and, in modules.json, a Normalize module
(unit length). all-MiniLM-L6-v2 was trained on mean-pooled, normalised vectors; BERT's sequence
classifier reads [CLS] through a dense+tanh pooler that sentence-transformers never trained
(MiniLM's linear probe: 0.66-0.68 on Rotten Tomatoes against 0.745 mean-pooled).

`apply_pooling` swaps a BERT-style model's pooler (the module whose output the classifier reads)
for a mask-aware one, so the head, the linear probe's cached features, ranking, the label-noise
probe and retention all read the same vector. The model stays its own transformers class: the
saved folder is a plain `BertForSequenceClassification` folder (the pooler's dense weights are
not in it), and config.json / ftkit.json record the pooling so ftkit.load applies it again.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

from ftkit.errors import ModelLoadError

log = logging.getLogger(__name__)

POOLING_FILE = "1_Pooling/config.json"
MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max"}
CONFIG_KEY = "ftkit_pooling"  # in the saved config.json, beside the architecture's own keys
ASKED = "model.pooling"  # the source of a pooling the config asked for (not read from the folder)


@dataclass(frozen=True)
class Pooling:
    mode: str  # "mean" or "max" over the non-padding tokens ("cls" keeps the architecture's pooler)
    normalize: bool = False  # unit length after pooling (sentence-transformers' Normalize module)
    source: str = ASKED  # where it came from: the folder's 1_Pooling/config.json, its config.json, model.pooling

    def describe(self) -> str:
        norm = ", then normalised to unit length" if self.normalize else ""
        return f"{self.mode} over the non-padding tokens{norm}"

    def record(self) -> dict:
        return asdict(self)


def folder_pooling(location: str) -> Optional[Pooling]:
    """The pooling a sentence-transformers folder declares, None when it declares none (a plain
    transformers folder, a hub id). Modes other than mean / cls / max (mean_sqrt_len, weighted) are
    not reproduced: None, with a warning."""
    folder = Path(location)
    path = folder / POOLING_FILE
    if not path.is_file():
        return _saved_by_ftkit(folder)
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{path}: unreadable pooling config ({err})") from None
    modes = [mode for key, mode in MODES.items() if config.get(key)]
    others = [k for k, v in config.items() if k.startswith("pooling_mode_") and v and k not in MODES]
    if len(modes) != 1 or others:
        log.warning("%s: pooling %s is not one of mean / cls / max; using the architecture's own", path,
                    modes + others)
        return None
    return Pooling(modes[0], _normalized(folder), POOLING_FILE)


def _saved_by_ftkit(folder: Path) -> Optional[Pooling]:
    """A model ftkit saved with its own pooling (config.json's ftkit_pooling), trained on further."""
    try:
        record = json.loads((folder / "config.json").read_text()).get(CONFIG_KEY)
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(record, dict):
        return None
    return Pooling(record["mode"], bool(record.get("normalize")), f"config.json {CONFIG_KEY}")


def _normalized(folder: Path) -> bool:
    """Whether modules.json lists a Normalize module after the pooling."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
    except (OSError, ValueError):
        return False
    return any(str(m.get("type", "")).endswith(".Normalize") for m in modules if isinstance(m, dict))


def choose_pooling(setting: str, location: str, normalize: Optional[bool] = None,
                   body_trains: bool = False) -> Optional[Pooling]:
    """model.pooling: auto -> the folder's own (None when it has none: the architecture's default);
    cls -> None (the architecture's default, the pre-issue-21 behaviour); mean -> mean over the tokens.
    `normalize` (model.normalize_pooled): unit length or not; None: the folder's Normalize for frozen
    features, and no Normalize when the body trains (`body_trains`): a normalised vector is what the
    frozen encoder was trained to give (linear probe +2.2 points over the raw mean), while a fine-tuned
    head on the raw mean gained 0.6-1.3 points over it (bench/RESULTS.md "Normalize")."""
    if setting == "cls":
        return None
    own = folder_pooling(location)
    if setting == "mean":
        chosen = Pooling("mean", own.normalize if own and own.mode == "mean" else False, ASKED)
    elif own is None or own.mode == "cls":
        return None
    else:
        chosen = own
    wanted = chosen.normalize and not body_trains if normalize is None else normalize
    if wanted == chosen.normalize:
        return chosen
    why = ", without Normalize while the body trains" if normalize is None else " + model.normalize_pooled"
    return replace(chosen, normalize=wanted, source=chosen.source if chosen.source == ASKED else chosen.source + why)


def saved_pooling(meta: dict) -> Optional[Pooling]:
    """The pooling a saved ftkit model was trained with (ftkit.json), None for the default."""
    record = meta.get("text_pooling")
    return Pooling(**record) if record else None
