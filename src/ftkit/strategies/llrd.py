"""Layer-wise learning-rate decay: every layer trains, lower layers more gently.

The head gets the full lr, the top block lr x decay, the next lr x decay^2, ..., the embeddings
lr x decay^(L+1) (Howard & Ruder 2018; Clark et al. 2020).
"""
from pydantic import Field

from ftkit.strategies.base import FreezeSummary, Settings, count, set_trainable, strategy, strategy_settings
from ftkit.strategies.groups import layer_groups


class LLRD(Settings):
    decay: float = Field(0.8, gt=0, le=1, description="lr multiplier per layer, from the top down")


@strategy("llrd", "all layers train, lr x decay^depth from the top (strategy.decay, default 0.8)", settings=LLRD)
def apply(model, cfg) -> FreezeSummary:
    decay = strategy_settings(cfg, "llrd").decay
    ordered = layer_groups(model).ordered()
    scales = {}
    for depth, group in enumerate(reversed(ordered)):  # depth 0 = head
        set_trainable(group, True)
        scales.update({name: float(decay) ** depth for name, _ in group})
    return count(model, scales)
