"""Layer-wise learning-rate decay: every layer trains, lower layers more gently.

The head gets the full lr, the top block lr x decay, the next lr x decay^2, ..., the embeddings
lr x decay^(L+1) (Howard & Ruder 2018; Clark et al. 2020).
"""
from ftkit.errors import StrategyError
from ftkit.strategies import FreezeSummary, count, options, set_trainable, strategy
from ftkit.strategies.groups import layer_groups


@strategy("llrd", "all layers train, lr x decay^depth from the top (strategy.decay, default 0.8)")
def apply(model, cfg) -> FreezeSummary:
    decay = options(cfg, "llrd", {"decay": 0.8})["decay"]
    if not isinstance(decay, (int, float)) or not 0 < decay <= 1:
        raise StrategyError(f"--set strategy.decay: expected a number in (0, 1], got {decay!r}")
    ordered = layer_groups(model).ordered()
    scales = {}
    for depth, group in enumerate(reversed(ordered)):  # depth 0 = head
        set_trainable(group, True)
        scales.update({name: float(decay) ** depth for name, _ in group})
    return count(model, scales)
