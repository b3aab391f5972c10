"""What trains: each strategy is a registered pure function ``apply(model, cfg) -> FreezeSummary``.

A strategy sets ``requires_grad`` on the model's parameters and may ask for per-parameter
learning-rate scales (LLRD); it reports trainable vs total parameters. Adding one is one module
here, one ``STRATEGIES.register`` line and a row in the parametrized test.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ftkit.errors import StrategyError
from ftkit.registry import Registry

STRATEGIES: Registry = Registry("strategy")


@dataclass(frozen=True)
class FreezeSummary:
    trainable: int
    total: int
    lr_scales: dict[str, float] = field(default_factory=dict)  # parameter name -> lr multiplier
    # Parameter names unfrozen at the start of epoch 1, 2, ... (gradual unfreezing); counts above
    # are those of epoch 0.
    unfreeze: tuple[tuple[str, ...], ...] = ()

    def as_dict(self) -> dict:
        return {"trainable": self.trainable, "total": self.total,
                "trainable_share": round(self.trainable / max(self.total, 1), 4)}


def count(model, lr_scales: dict[str, float] | None = None, unfreeze=()) -> FreezeSummary:
    params = list(model.parameters())
    return FreezeSummary(sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params),
                         lr_scales or {}, tuple(tuple(names) for names in unfreeze))


def set_trainable(params, trainable: bool) -> None:
    for _, param in params:
        param.requires_grad_(trainable)


def options(cfg, name: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """The strategy's own settings (``strategy.<key>``); unknown keys are an error, not ignored."""
    given = dict(cfg.strategy.model_extra or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        allowed = ", ".join(f"strategy.{k}" for k in defaults) or "none"
        raise StrategyError(f"--set strategy.{unknown[0]}: not a setting of strategy {name!r} (its settings: {allowed})")
    return {**defaults, **given}


def get_strategy(name: str):
    from ftkit.strategies import bitfit, freeze_bottom, full, gradual, llrd  # noqa: F401  (they register)
    return STRATEGIES.get(name)
