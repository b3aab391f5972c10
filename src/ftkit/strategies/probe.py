"""Linear probe and LP-FT: the pretrained body stays frozen and computes each example's features
once (cached on disk, see training/features.py); only the new head trains, on those features.

LP-FT (Kumar et al. 2022) then fine-tunes every layer starting from the probed head: a trained
head distorts the pretrained features less than a random one during full fine-tuning.
"""
from ftkit.errors import StrategyError
from ftkit.strategies import FreezeSummary, ProbePhase, count, options, set_trainable, strategy
from ftkit.strategies.groups import head_modules


def check_probe_head(model, name: str) -> None:
    """A probe trains a new head on frozen features; an encoder-decoder (Whisper) writes text with
    its pretrained decoder and has no such head."""
    if getattr(getattr(model, "config", None), "is_encoder_decoder", False):
        raise StrategyError(f"--strategy {name}: {type(model).__name__} generates text with its pretrained "
                            "decoder, there is no new head to probe; use frozen-encoder (the decoder trains on "
                            "cached encoder outputs), lora or full")


def freeze_body(model) -> None:
    head = tuple(f"{name}." for name in head_modules(model))
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(head))


@strategy("linear-probe", "body frozen, features cached on disk once; only the head trains (fastest)", lr=1e-3)
def linear_probe(model, cfg) -> FreezeSummary:
    options(cfg, "linear-probe", {})
    check_probe_head(model, "linear-probe")
    freeze_body(model)
    return count(model, probe=ProbePhase())


@strategy("lp-ft", "linear probe on cached features first (strategy.probe_epochs, probe_lr), "
          "then every layer trains from that head")
def lp_ft(model, cfg) -> FreezeSummary:
    opts = options(cfg, "lp-ft", {"probe_epochs": 5, "probe_lr": 1e-3})
    for key in ("probe_epochs", "probe_lr"):
        if not isinstance(opts[key], (int, float)) or isinstance(opts[key], bool) or opts[key] <= 0:
            raise StrategyError(f"--set strategy.{key}: expected a positive number, got {opts[key]!r}")
    check_probe_head(model, "lp-ft")
    head_modules(model)  # fails early when the head cannot be found
    set_trainable(list(model.named_parameters()), True)  # phase 2 trains everything
    return count(model, probe=ProbePhase(float(opts["probe_epochs"]), float(opts["probe_lr"]), then_full=True))
