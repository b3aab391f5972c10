"""LoRA (Hu et al. 2021) through PEFT: low-rank adapters beside the frozen attention weights,
plus the new task head, are all that train. The run folder keeps the adapter (small) and the
head; `ftkit export` merges them into plain weights."""
import warnings

from ftkit.errors import StrategyError
from ftkit.lazy import nn
from ftkit.strategies import FreezeSummary, count, options, strategy
from ftkit.strategies.groups import head_modules

DEFAULTS = {"rank": 8, "alpha": 16, "dropout": 0.1, "target_modules": None}


@strategy("lora", "low-rank adapters + the head train (strategy.rank, alpha, dropout, target_modules)", lr=5e-4)
def apply(model, cfg) -> FreezeSummary:
    from peft import LoraConfig, get_peft_model

    opts = options(cfg, "lora", DEFAULTS)
    _check(opts)
    if cfg.model.init == "random":
        # The run folder keeps only the adapter and rebuilds the body from the pretrained weights;
        # adapters on a random body are no baseline anyway.
        raise StrategyError("lora adapts pretrained weights; with --set model.init=random use "
                            "--strategy full (the from-scratch baseline)")
    lora = LoraConfig(r=opts["rank"], lora_alpha=opts["alpha"], lora_dropout=float(opts["dropout"]),
                      target_modules=opts["target_modules"] or default_targets(model),
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


def _check(opts: dict) -> None:
    for key in ("rank", "alpha"):
        if not isinstance(opts[key], int) or isinstance(opts[key], bool) or opts[key] < 1:
            raise StrategyError(f"--set strategy.{key}: expected a whole number >= 1, got {opts[key]!r}")
    if not isinstance(opts["dropout"], (int, float)) or not 0 <= opts["dropout"] < 1:
        raise StrategyError(f"--set strategy.dropout: expected a number in [0, 1), got {opts['dropout']!r}")
    targets = opts["target_modules"]
    if targets is not None and not (targets == "all-linear" or
                                    (isinstance(targets, list) and all(isinstance(t, str) for t in targets))):
        raise StrategyError("--set strategy.target_modules: expected a list of module names, e.g. "
                            "'[query,value]', or all-linear")
