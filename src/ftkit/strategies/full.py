"""Full fine-tuning: every parameter trains."""
from ftkit.strategies.base import FreezeSummary, count, strategy, strategy_settings


@strategy("full", "every layer trains (the strongest, and the most compute)")
def apply(model, cfg) -> FreezeSummary:
    strategy_settings(cfg, "full")  # it takes none: any strategy.* key is refused
    for param in model.parameters():
        param.requires_grad_(True)
    return count(model)
