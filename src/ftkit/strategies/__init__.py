"""What trains: each strategy is a registered pure function ``apply(model, cfg) -> FreezeSummary``."""
from __future__ import annotations

from dataclasses import dataclass

from ftkit.registry import Registry

STRATEGIES: Registry = Registry("strategy")


@dataclass(frozen=True)
class FreezeSummary:
    trainable: int
    total: int

    def as_dict(self) -> dict:
        return {"trainable": self.trainable, "total": self.total}


def count(model) -> FreezeSummary:
    params = list(model.parameters())
    return FreezeSummary(sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params))


def get_strategy(name: str):
    from ftkit.strategies import full  # noqa: F401  (registers itself)
    return STRATEGIES.get(name)
