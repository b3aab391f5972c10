"""The strategies' shared pieces: the registry, the `@strategy` decorator, typed `Settings`, what a
strategy returns (`FreezeSummary`, `ProbePhase`) and the default learning rates. The strategy
modules import these from here; the package (`ftkit.strategies`) imports every strategy module
once, which registers it, and re-exports these names."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, ValidationError

from ftkit.errors import StrategyError
from ftkit.registry import Registry

STRATEGIES: Registry = Registry("strategy")
FULL_LR = 5e-5  # the usual peak lr for updating a whole pretrained transformer


class Settings(BaseModel):
    """A strategy's own settings (``strategy.<key>``), typed like PEFT's per-method configs: each
    strategy subclasses it (no fields: it takes none). Unknown keys are an error, not ignored;
    values are not coerced (``rank: true`` is no whole number)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def strategy(name: str, help: str, lr: Optional[float] = None, needs: Optional[str] = None,
             settings: type[Settings] = Settings, frozen_body: bool = False):
    """Register ``apply`` under `name`; `lr` is used when the user gives none (a head or adapter
    trained alone needs a far larger step than a whole pretrained network). None: the task's lr
    for updating a whole pretrained body (FULL_LR for transformers, larger for convnets).
    `needs`: the kind of model it only applies to (e.g. "encoder-decoder"); None: any model.
    `settings`: its typed settings (`strategy_settings` validates `strategy.*` against them).
    `frozen_body`: no weight of the pretrained body ever trains (the linear probe)."""
    def add(fn):
        fn.default_lr, fn.needs, fn.settings, fn.frozen_body = lr, needs, settings, frozen_body
        return STRATEGIES.register(name, help)(fn)
    return add


def general_strategies() -> list[str]:
    """The strategies that apply to any model (tests parametrize over them)."""
    return [name for name in STRATEGIES.names() if getattr(STRATEGIES.get(name), "needs", None) is None]


@dataclass(frozen=True)
class ProbePhase:
    """Train only the new head on features the frozen body computes once (cached on disk)."""

    epochs: Optional[float] = None  # None: train.epochs
    lr: Optional[float] = None  # None: train.lr (linear probe); LP-FT: the linear probe's default lr
    then_full: bool = False  # LP-FT: afterwards every layer trains, starting from this head


@dataclass(frozen=True)
class FreezeSummary:
    trainable: int
    total: int
    lr_scales: dict[str, float] = field(default_factory=dict)  # parameter name -> lr multiplier
    # Parameter names unfrozen at the start of epoch 1, 2, ... (gradual unfreezing); counts above
    # are those of epoch 0.
    unfreeze: tuple[tuple[str, ...], ...] = ()
    probe: Optional[ProbePhase] = None
    adapter: Any = field(default=None, compare=False)  # the PeftModel wrapping the model (LoRA)
    # frozen-encoder: the task replaces each split by its frozen encoder's outputs, computed once
    cache_encoder: bool = False

    def as_dict(self) -> dict:
        return {"trainable": self.trainable, "total": self.total,
                "trainable_share": round(self.trainable / max(self.total, 1), 4)}


def count(model, lr_scales: dict[str, float] | None = None, unfreeze=(), **extra) -> FreezeSummary:
    params = list(model.parameters())
    return FreezeSummary(sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params),
                         lr_scales or {}, tuple(tuple(names) for names in unfreeze), **extra)


def set_trainable(params, trainable: bool) -> None:
    for _, param in params:
        param.requires_grad_(trainable)


def strategy_settings(cfg, name: Optional[str] = None) -> Settings:
    """`strategy.*` of the config, validated against strategy `name`'s typed settings (default: the
    configured strategy); a bad or unknown key is a StrategyError naming it."""
    name = name or cfg.strategy.name
    model = STRATEGIES.get(name).settings
    try:
        return model.model_validate(dict(cfg.strategy.model_extra or {}))
    except ValidationError as err:
        raise StrategyError(_settings_message(err, name, model)) from None


def _settings_message(err: ValidationError, name: str, model: type[Settings]) -> str:
    first = err.errors()[0]
    key = ".".join(str(part) for part in first["loc"][:1]) or "?"
    if first["type"] == "extra_forbidden":
        allowed = ", ".join(f"strategy.{k}" for k in model.model_fields) or "none"
        return f"--set strategy.{key}: not a setting of strategy {name!r} (its settings: {allowed})"
    return f"--set strategy.{key}: {first['msg'][0].lower()}{first['msg'][1:]}, got {first.get('input')!r}"


def default_lr(name: str, task=None) -> float:
    """The task's own lr for this strategy (`strategy_lr`), else the strategy's, else the task's
    lr for a whole pretrained body."""
    own = task.strategy_lr.get(name) if task is not None else None
    return own or STRATEGIES.get(name).default_lr or (task is not None and task.body_lr) or FULL_LR


def trains_body(name: str) -> bool:
    """Whether strategy `name` updates any weight of the pretrained body (all but the linear probe)."""
    return not STRATEGIES.get(name).frozen_body


def train_lr(cfg, task=None, name: Optional[str] = None) -> float:
    """The peak lr a run of strategy `name` (default: the configured one) trains with: --lr when
    given, else `default_lr`. The one place "no lr given -> default" is decided; `task` is the
    configured task's object (strategies sit below tasks, so the caller passes it)."""
    if cfg.train.lr is not None:
        return cfg.train.lr
    return default_lr(name or cfg.strategy.name, task)


def freeze_word_embeddings(model, summary: FreezeSummary) -> FreezeSummary:
    """model.freeze_word_embeddings: the input token-embedding matrix stays frozen whatever the
    strategy set, also through gradual unfreezing; the counts are taken again."""
    getter = getattr(model, "get_input_embeddings", None)  # every transformers model has one
    weight = getattr(getter() if getter is not None else None, "weight", None)
    if weight is None:
        raise StrategyError(f"model.freeze_word_embeddings: {type(model).__name__} has no input token embeddings")
    weight.requires_grad_(False)
    name = next((n for n, p in model.named_parameters() if p is weight), None)
    unfreeze = tuple(tuple(n for n in names if n != name) for names in summary.unfreeze)
    recount = count(model, summary.lr_scales, unfreeze)
    return replace(summary, trainable=recount.trainable, unfreeze=unfreeze)
