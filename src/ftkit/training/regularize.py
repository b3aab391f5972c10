"""Regularisers that act on the model rather than the loss: dropout override and L2-SP."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def set_dropout(model: nn.Module, rate: float | None) -> int:
    """Set every nn.Dropout's rate (attention dropout included in HF models); returns how many."""
    if rate is None:
        return 0
    modules = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    for module in modules:
        module.p = rate
    return len(modules)


class L2SP:
    """alpha * sum ||theta - theta_0||^2 over the pretrained body (Li et al. 2018).

    theta_0 is a copy of the pretrained weights taken before training; the new head is left to
    ordinary weight decay, as in the paper. Only trainable parameters are pulled.
    """

    def __init__(self, model: nn.Module, alpha: float, head_names: set[str]):
        self.alpha = alpha
        self.pairs = [(p, p.detach().clone()) for n, p in model.named_parameters()
                      if p.requires_grad and n not in head_names]

    def __call__(self) -> torch.Tensor:
        return self.alpha * sum(((p - p0) ** 2).sum() for p, p0 in self.pairs)

    def distance(self) -> float:
        with torch.no_grad():
            return float(sum(((p - p0) ** 2).sum() for p, p0 in self.pairs) ** 0.5)


def with_penalty(loss: Callable, penalty: Callable | None) -> Callable:
    if penalty is None:
        return loss
    return lambda model, batch: loss(model, batch) + penalty()
