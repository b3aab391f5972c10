"""LoRA (Hu et al. 2021) through PEFT: low-rank adapters beside the frozen attention weights,
plus the new task head, are all that train. The run folder keeps the adapter (small) and the
head; `ftkit export` merges them into plain weights."""
import warnings
from typing import Literal, Optional, Union

from pydantic import Field

from ftkit.errors import StrategyError
from ftkit.lazy import nn
from ftkit.strategies.base import FreezeSummary, Settings, count, strategy, strategy_settings
from ftkit.strategies.groups import head_modules


class LoRA(Settings):
    """PEFT's LoraConfig fields ftkit passes on (r, lora_alpha, lora_dropout, target_modules)."""

    rank: int = Field(8, ge=1, description="the adapters' rank r")
    alpha: int = Field(16, ge=1, description="lora_alpha: the update is scaled by alpha / rank")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout on the adapters' input")
    target_modules: Optional[Union[list[str], Literal["all-linear"]]] = Field(
        None, description="modules that get adapters; None: PEFT's choice for the architecture")


@strategy("lora", "low-rank adapters + the head train (strategy.rank, alpha, dropout, target_modules)", lr=5e-4,
          settings=LoRA)
def apply(model, cfg) -> FreezeSummary:
    from peft import LoraConfig, get_peft_model

    opts = strategy_settings(cfg, "lora")
    if cfg.model.init == "random":
        # The run folder keeps only the adapter and rebuilds the body from the pretrained weights;
        # adapters on a random body are no baseline anyway.
        raise StrategyError("lora adapts pretrained weights; with --set model.init=random use "
                            "--strategy full (the from-scratch baseline)")
    lora = LoraConfig(r=opts.rank, lora_alpha=opts.alpha, lora_dropout=opts.dropout,
                      target_modules=opts.target_modules or default_targets(model),
                      modules_to_save=new_head(model))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # transformers deprecations seen through peft
            # Injects the adapters into `model` itself; the wrapper is kept for saving.
            wrapper = get_peft_model(model, lora)
    except ValueError as err:  # e.g. target modules that do not exist
        raise StrategyError(f"--set strategy.target_modules: {err}") from None
    return count(model, adapter=wrapper)


def new_head(model):
    """The head modules trained (and saved) beside the adapters; none when the model keeps its
    pretrained output layer (speech recognition: Whisper's is tied to its token embeddings)."""
    return None if getattr(model, "ftkit_pretrained_head", False) else head_modules(model)


def default_targets(model):
    """PEFT's per-architecture choice (attention query/value), else every linear layer."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as KNOWN

    if getattr(model, "lora_targets", None):  # models ftkit wraps name their own (e.g. EfficientNet)
        return list(model.lora_targets)
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in KNOWN:
        return KNOWN[model_type]
    head = tuple(head_modules(model))
    body = [(name, m) for name, m in model.named_modules() if name and name.split(".")[0] not in head]
    if any(isinstance(m, nn.Linear) for _, m in body):
        return "all-linear"
    convs = sorted({name.rsplit(".", 1)[-1] for name, m in body if isinstance(m, nn.Conv2d)})
    if not convs:
        raise StrategyError("no linear or convolution layers to adapt; name them with "
                            "--set strategy.target_modules='[...]'")
    return convs  # a CNN: adapters on its convolutions
