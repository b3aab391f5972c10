"""AdamW with the usual parameter groups, and the learning-rate schedule."""
from __future__ import annotations

import inspect

import torch

from ftkit.config import TrainConfig


def no_decay(name: str, param: torch.Tensor) -> bool:
    # Decaying biases and norm gains pulls them toward 0, which only hurts (BERT recipe).
    return param.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")


def param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict]:
    decay, plain = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (plain if no_decay(name, param) else decay).append(param)
    return [g for g in ({"params": decay, "weight_decay": cfg.weight_decay},
                        {"params": plain, "weight_decay": 0.0}) if g["params"]]


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    # The fused kernel updates all tensors in one pass: on CPU it removes most of the optimizer
    # step's cost, which is large for the 12M-parameter embedding matrix of a small encoder.
    fused = "fused" in inspect.signature(torch.optim.AdamW).parameters and device.type in ("cpu", "cuda")
    options = {"fused": True} if fused else {}
    return torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, **options)


def make_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    from transformers import get_scheduler

    warmup = int(round(cfg.warmup_ratio * total_steps))
    kind = {"constant": "constant_with_warmup"}.get(cfg.schedule, cfg.schedule)
    return get_scheduler(kind, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)
