"""Frozen encoder (speech recognition, encoder-decoder models such as Whisper): the encoder stays
as pretrained and its outputs are computed once per clip and cached (tasks/speech_cache.py);
only the decoder trains, on those outputs. On a CPU this is what makes Whisper fine-tuning
affordable: the encoder runs over a 30 s window for every clip and is most of the compute."""
from ftkit.errors import StrategyError
from ftkit.strategies.base import FreezeSummary, count, strategy, strategy_settings
from ftkit.strategies.groups import is_encoder_decoder


@strategy("frozen-encoder", "encoder-decoder speech models: encoder frozen, its outputs cached once; the decoder "
          "trains (fast on CPU)", needs="encoder-decoder")
def apply(model, cfg) -> FreezeSummary:
    strategy_settings(cfg, "frozen-encoder")  # it takes none: any strategy.* key is refused
    if not is_encoder_decoder(model) or not hasattr(model, "get_encoder"):
        raise StrategyError(f"--strategy frozen-encoder needs an encoder-decoder model (e.g. Whisper), not "
                            f"{type(model).__name__}; use linear-probe, freeze-bottom, lora or full")
    encoder = {id(p) for p in model.get_encoder().parameters()}
    for param in model.parameters():
        param.requires_grad_(id(param) not in encoder)
    return count(model, cache_encoder=True)
