"""Full fine-tuning: every parameter trains."""
from ftkit.strategies import STRATEGIES, FreezeSummary, count, options


@STRATEGIES.register("full", "every layer trains (the strongest, and the most compute)")
def apply(model, cfg) -> FreezeSummary:
    options(cfg, "full", {})
    for param in model.parameters():
        param.requires_grad_(True)
    return count(model)
