"""Freeze the embeddings and the first N blocks; the upper blocks and the head train.

Lower layers hold general features that small datasets cannot improve; freezing them saves the
backward pass below the first trainable block and the optimizer state for their weights.
"""
from typing import Optional

from pydantic import Field

from ftkit.errors import StrategyError
from ftkit.strategies.base import FreezeSummary, Settings, count, set_trainable, strategy, strategy_settings
from ftkit.strategies.groups import layer_groups


class FreezeBottom(Settings):
    layers: Optional[int] = Field(None, ge=0, description="blocks frozen from the bottom; None: half of them")


@strategy("freeze-bottom", "embeddings + the first N blocks frozen (strategy.layers, default half)",
          settings=FreezeBottom)
def apply(model, cfg) -> FreezeSummary:
    groups = layer_groups(model)
    n_blocks = len(groups.blocks)
    layers = strategy_settings(cfg, "freeze-bottom").layers
    layers = n_blocks // 2 if layers is None else layers
    if not 0 <= layers <= n_blocks:  # the upper bound depends on the model
        raise StrategyError(f"--set strategy.layers: expected a whole number from 0 to {n_blocks} "
                            f"(this model has {n_blocks} blocks), got {layers!r}")
    set_trainable([p for group in groups.ordered() for p in group], True)
    set_trainable(groups.embeddings, False)
    for block in groups.blocks[:layers]:
        set_trainable(block, False)
    return count(model)
