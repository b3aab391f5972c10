"""Full fine-tuning: every parameter trains."""
from ftkit.strategies import FreezeSummary, count, options, strategy


@strategy("full", "every layer trains (the strongest, and the most compute)")
def apply(model, cfg) -> FreezeSummary:
    options(cfg, "full", {})
    for param in model.parameters():
        param.requires_grad_(True)
    return count(model)
