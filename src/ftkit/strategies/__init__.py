"""What trains: each strategy is a registered pure function ``apply(model, cfg) -> FreezeSummary``.

A strategy sets ``requires_grad`` on the model's parameters and may ask for per-parameter
learning-rate scales (LLRD), a head-only phase on cached features (linear probe, LP-FT) or an
adapter (LoRA); it reports trainable vs total parameters. Adding one is one module here with a
``@strategy(...)`` line (its pieces come from ``strategies.base``), named in the import below that
registers them; the parametrized tests pick it up.
"""
from ftkit.strategies.base import (FULL_LR, STRATEGIES, FreezeSummary, ProbePhase, Settings,  # noqa: F401
                                   count, default_lr, freeze_word_embeddings, general_strategies, set_trainable, strategy,
                                   strategy_settings, train_lr, trains_body)
from ftkit.strategies import bitfit, freeze_bottom, frozen_encoder, full, gradual, llrd, lora, probe  # noqa: E402,F401  (register)


def get_strategy(name: str):
    """The registered strategy `name` (a StrategyError names the known ones)."""
    return STRATEGIES.get(name)
