"""Gradual unfreezing (ULMFiT, Howard & Ruder 2018): the head trains alone in epoch 0, then one
more layer group from the top is unfrozen at the start of each following epoch."""
from ftkit.strategies.base import FreezeSummary, count, set_trainable, strategy, strategy_settings
from ftkit.strategies.groups import layer_groups


@strategy("gradual-unfreeze", "head first, then one more layer group per epoch from the top", lr=2e-4)
def apply(model, cfg) -> FreezeSummary:
    strategy_settings(cfg, "gradual-unfreeze")  # it takes none: any strategy.* key is refused
    ordered = layer_groups(model).ordered()  # [embeddings, blocks..., head]
    body = [p for group in ordered[:-1] for p in group]
    set_trainable(body, False)
    set_trainable(ordered[-1], True)
    schedule = [[name for name, _ in group] for group in reversed(ordered[:-1])]  # top block first
    return count(model, unfreeze=schedule)
