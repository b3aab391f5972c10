"""AdamW with the usual parameter groups, and the learning-rate schedule."""
from __future__ import annotations

import inspect

import torch

from ftkit.config import TrainConfig
from ftkit.errors import StrategyError


def no_decay(name: str, param: torch.Tensor) -> bool:
    # Decaying biases and norm gains pulls them toward 0, which only hurts (BERT recipe).
    return param.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")


def param_groups(model: torch.nn.Module, cfg: TrainConfig, lr_scales: dict[str, float] | None = None,
                 later: frozenset = frozenset()) -> list[dict]:
    """Trainable parameters grouped by (lr scale, decay or not); frozen ones are left out unless
    they are unfrozen `later` (AdamW skips them while their grad is None)."""
    groups: dict[tuple[float, bool], list] = {}
    for name, param in model.named_parameters():
        if param.requires_grad or name in later:
            key = ((lr_scales or {}).get(name, 1.0), not no_decay(name, param))
            groups.setdefault(key, []).append(param)
    return [{"params": params, "lr": cfg.lr * scale, "weight_decay": cfg.weight_decay if decay else 0.0}
            for (scale, decay), params in sorted(groups.items(), key=lambda kv: (-kv[0][0], not kv[0][1]))]


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device,
                   lr_scales: dict[str, float] | None = None, later: frozenset = frozenset()) -> torch.optim.Optimizer:
    # The fused kernel updates all tensors in one pass: on CPU it removes most of the optimizer
    # step's cost, which is large for the 12M-parameter embedding matrix of a small encoder.
    fused = "fused" in inspect.signature(torch.optim.AdamW).parameters and device.type in ("cpu", "cuda")
    options = {"fused": True} if fused else {}
    groups = param_groups(model, cfg, lr_scales, later)
    if not groups:
        raise StrategyError("the strategy left no parameter trainable")
    return torch.optim.AdamW(groups, lr=cfg.lr, **options)


def make_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    from transformers import get_scheduler

    warmup = int(round(cfg.warmup_ratio * total_steps))
    kind = {"constant": "constant_with_warmup"}.get(cfg.schedule, cfg.schedule)
    return get_scheduler(kind, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)
