"""Freeze the embeddings and the first N blocks; the upper blocks and the head train.

Lower layers hold general features that small datasets cannot improve; freezing them saves the
backward pass below the first trainable block and the optimizer state for their weights.
"""
from ftkit.errors import StrategyError
from ftkit.strategies import FreezeSummary, count, options, set_trainable, strategy
from ftkit.strategies.groups import layer_groups


@strategy("freeze-bottom", "embeddings + the first N blocks frozen (strategy.layers, default half)")
def apply(model, cfg) -> FreezeSummary:
    groups = layer_groups(model)
    n_blocks = len(groups.blocks)
    layers = options(cfg, "freeze-bottom", {"layers": n_blocks // 2})["layers"]
    if not isinstance(layers, int) or not 0 <= layers <= n_blocks:
        raise StrategyError(f"--set strategy.layers: expected a whole number from 0 to {n_blocks} "
                            f"(this model has {n_blocks} blocks), got {layers!r}")
    set_trainable([p for group in groups.ordered() for p in group], True)
    set_trainable(groups.embeddings, False)
    for block in groups.blocks[:layers]:
        set_trainable(block, False)
    return count(model)
