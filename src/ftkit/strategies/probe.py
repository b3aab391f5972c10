"""Linear probe and LP-FT: the pretrained body stays frozen and computes each example's features
once (cached on disk, see training/features.py); only the new head trains, on those features.
A text decoder's output layer (Whisper) scores every token, not one vector per example: it trains
behind the frozen model, on cached encoder outputs (see probe_readout).

LP-FT (Kumar et al. 2022) then fine-tunes every layer starting from the probed head: a trained
head distorts the pretrained features less than a random one during full fine-tuning.
"""
from typing import Optional

from pydantic import Field

from ftkit.errors import StrategyError
from ftkit.lazy import nn
from ftkit.strategies.base import (FreezeSummary, ProbePhase, Settings, count, set_trainable, strategy,
                              strategy_settings)
from ftkit.strategies.groups import head_modules, is_encoder_decoder


def probe_readout(model, name: str) -> bool:
    """Make the layer a probe trains stand alone; True when it is a text decoder's output layer.

    A classifier's head is new. An encoder-decoder that writes text (Whisper) has none: its readout
    is the output layer, tied to the decoder's token embeddings. The probe trains an untied copy
    of it (frozen encoder and decoder), so the embeddings stay as pretrained and the copy is saved
    as its own weight."""
    if not is_encoder_decoder(model):
        return False
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if out is None or not hasattr(out, "weight"):
        raise StrategyError(f"--strategy {name}: {type(model).__name__} has no output layer to probe; use "
                            "frozen-encoder, lora or full")
    if out.weight is model.get_input_embeddings().weight:
        out.weight = nn.Parameter(out.weight.detach().clone())
    model.config.tie_word_embeddings = False  # saved and reloaded as its own weight
    return True


def freeze_body(model) -> None:
    head = tuple(f"{name}." for name in head_modules(model))
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(head))


@strategy("linear-probe", "body frozen, features cached on disk once; only the head trains (fastest)", lr=1e-3,
          frozen_body=True)
def linear_probe(model, cfg) -> FreezeSummary:
    strategy_settings(cfg, "linear-probe")  # it takes none: any strategy.* key is refused
    seq2seq = probe_readout(model, "linear-probe")
    freeze_body(model)
    # an encoder-decoder's frozen encoder gives the same outputs every epoch: computed once, cached
    return count(model, probe=ProbePhase(), cache_encoder=seq2seq)


class LPFT(Settings):
    probe_epochs: float = Field(5.0, gt=0, description="epochs of the head-only first phase")
    probe_lr: Optional[float] = Field(None, gt=0, description="its lr; None: the linear probe's default")


@strategy("lp-ft", "linear probe on cached features first (strategy.probe_epochs, probe_lr), "
          "then every layer trains from that head", settings=LPFT)
def lp_ft(model, cfg) -> FreezeSummary:
    opts = strategy_settings(cfg, "lp-ft")
    probe_readout(model, "lp-ft")  # no encoder cache: the second phase trains the encoder too
    head_modules(model)  # fails early when the head cannot be found
    set_trainable(list(model.named_parameters()), True)  # phase 2 trains everything
    # probe_lr None: the linear probe's default lr for the task, filled in by fit (runs/fit.py)
    return count(model, probe=ProbePhase(opts.probe_epochs, opts.probe_lr, then_full=True))
