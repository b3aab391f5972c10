"""The torch side of models/pooling.py: a mask-aware pooler put in place of a BERT-style model's
own (the module whose output its sequence classifier reads). Imported when a model is built or
loaded, so reading a pooling config needs no torch."""
from __future__ import annotations

import json
from typing import Optional

import torch
from torch import nn

from ftkit.errors import ConfigError
from ftkit.models.pooling import CONFIG_KEY, Pooling

OUTPUT_VERSION = 2  # part of the cached-feature key: bump when TokenPooler's output changes (2: sqrt(hidden) scale)


class TokenPooler(nn.Module):
    """(batch, seq, hidden) -> (batch, hidden): mean or max over the tokens the attention mask
    keeps, or the first token; optionally unit length (scaled by sqrt(hidden)). No weights (the folder's pooler dense is
    dropped). The model's forward pre-hook (`remember_mask`) hands it the batch's attention mask,
    since a transformers pooler is called with the hidden states alone."""

    def __init__(self, pooling: Pooling):
        super().__init__()
        self.mode, self.normalize = pooling.mode, pooling.normalize
        self.mask: Optional[torch.Tensor] = None  # (batch, seq), set for the length of one forward pass

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.mode == "cls":
            out = hidden[:, 0]
        else:
            keep = (torch.ones(hidden.shape[:2], device=hidden.device) if self.mask is None
                    else self.mask.to(hidden.device)).unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
            if self.mode == "max":
                out = hidden.masked_fill(keep == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
            else:
                out = (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1)
        if not self.normalize:
            return out
        # Unit length (the folder's Normalize), times sqrt(hidden size): the same direction, but each
        # feature has unit RMS, as a fresh head expects. A unit vector caps a head's logits at the norm of
        # its weights, which AdamW grows ~lr per step: fine-tuned at 5e-5, the head's scores stayed
        # under 0.62 (bench/RESULTS.md "Pooling"). The probes standardize their features: no change there.
        return nn.functional.normalize(out, p=2, dim=-1) * hidden.shape[-1] ** 0.5

    def extra_repr(self) -> str:
        return f"mode={self.mode}, normalize={self.normalize}"


def remember_mask(module: nn.Module, args: tuple, kwargs: dict) -> None:
    """Forward pre-hook on the base model: its pooler reads this call's attention mask."""
    mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
    module.pooler.mask = mask


def forget_mask(module: nn.Module, args: tuple, kwargs: dict, output) -> None:
    module.pooler.mask = None


def poolable(model: nn.Module) -> bool:
    """A BERT-style model: its base model holds a `...Pooler` module of the hidden states alone,
    whose output the sequence classifier reads (BERT, MiniLM). RoBERTa, MPNet, DistilBERT and
    ELECTRA classifiers build their base without one (their heads read the first token
    themselves); ALBERT's is a bare Linear + tanh: none of them is poolable here."""
    pooler = getattr(getattr(model, "base_model", None), "pooler", None)
    return isinstance(pooler, nn.Module) and type(pooler).__name__.endswith("Pooler")


def apply_pooling(model: nn.Module, pooling: Optional[Pooling]) -> None:
    """Read the model's own pooling in place of its [CLS] pooler (None: leave the model as it is).
    The pooling is recorded in model.config, so save_pretrained writes it into config.json."""
    if pooling is None:
        return
    if not poolable(model):
        raise ConfigError(f"model.pooling: {type(model).__name__} has no [CLS] pooler to replace with "
                          f"{pooling.mode} pooling (BERT-style models only); set --set model.pooling=cls")
    base = model.base_model
    base.pooler = TokenPooler(pooling)
    base.register_forward_pre_hook(remember_mask, with_kwargs=True)
    base.register_forward_hook(forget_mask, with_kwargs=True)
    setattr(model.config, CONFIG_KEY, pooling.record())


def model_pooling(model: nn.Module) -> Optional[dict]:
    """The pooling record of a model apply_pooling changed (None: the architecture's own)."""
    config = getattr(model, "config", None)
    return getattr(config, CONFIG_KEY, None) if config is not None else None


def pooling_key(model: nn.Module) -> Optional[str]:
    """What tells this model's pooled features apart in a cache key (None: the architecture's own)."""
    pooling = model_pooling(model)
    return None if pooling is None else json.dumps({**pooling, "output_version": OUTPUT_VERSION}, sort_keys=True)
