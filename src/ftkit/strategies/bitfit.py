"""BitFit (Ben Zaken et al. 2022): only bias terms and the new head train."""
from ftkit.strategies.base import FreezeSummary, count, set_trainable, strategy, strategy_settings
from ftkit.strategies.groups import layer_groups


@strategy("bitfit", "only biases (and the head) train: ~0.1% of the body's parameters", lr=1e-3)
def apply(model, cfg) -> FreezeSummary:
    strategy_settings(cfg, "bitfit")  # it takes none: any strategy.* key is refused
    groups = layer_groups(model)
    body = [p for group in [groups.embeddings, *groups.blocks] for p in group]
    set_trainable(body, False)
    set_trainable([(n, p) for n, p in body if n.endswith("bias")], True)
    set_trainable(groups.head, True)
    return count(model)
