"""The search space: which settings a trial draws, and from what range.

A space maps dotted config keys (``train.lr``) to a range ``{low, high, log, step}`` or a list
``{choices: [...]}``. The user's own space lives under a top-level ``tune:`` key of the YAML
config (stripped before FitConfig sees it); without one, `default_space` gives ranges that suit
the task and strategy. ``lr_scale`` is a pseudo-key: the lr is that multiple of the chosen
strategy's default lr, so one range fits strategies whose natural lr differ 20-fold.

Parameters owned by one strategy (LoRA rank, LLRD decay, frozen layers) are drawn only in trials
that use that strategy (Optuna's define-by-run), so they never pollute the others.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ftkit.config import FitConfig, flatten, read_yaml, set_dotted, validate
from ftkit.errors import ConfigError
from ftkit.models.loading import resolve
from ftkit.strategies import default_lr, train_lr
from ftkit.tasks import get_task

Number = Union[int, float]
LR_SCALE = "lr_scale"
BODY_STRATEGIES = {"full", "llrd", "freeze-bottom", "gradual-unfreeze", "lp-ft"}  # pretrained body moves
# A key drawn only when the trial's strategy is one of these (others would reject or ignore it).
OWNERS = {"strategy.rank": {"lora"}, "strategy.alpha": {"lora"}, "strategy.dropout": {"lora"},
          "strategy.decay": {"llrd"}, "strategy.layers": {"freeze-bottom"},
          "strategy.probe_epochs": {"lp-ft"}, "strategy.probe_lr": {"lp-ft"},
          "train.l2sp": BODY_STRATEGIES}


class ParamSpec(BaseModel):
    """One searched setting: a numeric range or a list of choices."""

    model_config = ConfigDict(extra="forbid")
    low: Optional[Number] = None
    high: Optional[Number] = None
    log: bool = False
    step: Optional[Number] = None
    choices: Optional[list[Any]] = None

    @model_validator(mode="after")
    def _check(self):
        if self.choices is not None:
            if not self.choices or self.low is not None or self.high is not None:
                raise ValueError("give either a non-empty choices list or low/high, not both")
            return self
        if self.low is None or self.high is None or not self.low < self.high:
            raise ValueError("expected {low, high} with low < high, or {choices: [...]}")
        if self.log and self.low <= 0:
            raise ValueError("log ranges need low > 0")
        return self

    def is_int(self) -> bool:
        return all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high)) and \
            (self.step is None or isinstance(self.step, int))


class TuneSpec(BaseModel):
    """The `tune:` section of a config file."""

    model_config = ConfigDict(extra="forbid")
    space: dict[str, ParamSpec] = Field(default_factory=dict, description="dotted key -> range or choices")
    extend: bool = Field(False, description="true: add to (and override) the default space instead of replacing it")


def parse_spec(tree: Optional[dict]) -> Optional[TuneSpec]:
    """Validate a `tune:` mapping; errors name the key (e.g. ``tune.space.train.lr``)."""
    if tree is None:
        return None
    try:
        spec = TuneSpec.model_validate(tree)
    except ValidationError as err:
        item = err.errors()[0]
        where = ".".join(str(p) for p in ("tune", *item["loc"]))
        raise ConfigError(f"config key {where}: {item['msg']}") from None
    for key, param in spec.space.items():
        _check_key(key, param)
    return spec


def _check_key(key: str, param: ParamSpec) -> None:
    """The key must be a real setting: try it with one of its values."""
    if key == LR_SCALE:
        return
    value = param.choices[0] if param.choices is not None else param.low
    tree: dict = {}
    set_dotted(tree, key, value)
    try:
        validate(tree)
    except ConfigError as err:
        raise ConfigError(f"config key tune.space.{key}: {err}") from None


def split_config(config) -> tuple[Any, Optional[TuneSpec]]:
    """(the config without its `tune:` section, the parsed section) for a YAML path, dict or FitConfig."""
    if config is None or isinstance(config, FitConfig):
        return config, None
    tree = dict(config) if isinstance(config, dict) else read_yaml(config)
    spec = parse_spec(tree.pop("tune", None))
    nested: dict = {}
    for key, value in flatten(tree).items():  # dotted keys in the YAML, as `ftkit fit` reads them
        set_dotted(nested, key, value)
    return nested, spec


def default_space(cfg: FitConfig, search_strategy: bool) -> dict[str, ParamSpec]:
    """Ranges that suit the run: the lr around the strategy's default (x0.2..x5, log), batch
    size around the configured one, up to the configured epochs, and the regularizers."""
    space: dict[str, ParamSpec] = {}
    if search_strategy:
        names = list(get_task(cfg.task).advise_strategies) or \
            ["full", "llrd", "lora"] + (["freeze-bottom"] if _n_blocks(cfg) else [])
        space["strategy.name"] = ParamSpec(choices=names)
        space[LR_SCALE] = ParamSpec(low=0.2, high=5.0, log=True)
    else:
        center = train_lr(cfg, get_task(cfg.task))
        space["train.lr"] = ParamSpec(low=center / 5, high=min(center * 5, 0.5), log=True)
    batch = cfg.train.batch_size
    space["train.batch_size"] = ParamSpec(choices=sorted({max(1, batch // 2), batch, batch * 2}))
    epochs = math.ceil(cfg.train.epochs)
    if epochs >= 2:
        space["train.epochs"] = ParamSpec(low=max(1, epochs // 2), high=epochs)
    space["train.weight_decay"] = ParamSpec(low=0.0, high=0.1)
    space["train.warmup_ratio"] = ParamSpec(low=0.0, high=0.2)
    space["model.dropout"] = ParamSpec(low=0.0, high=0.3)
    if get_task(cfg.task).capabilities.label_smoothing:  # CTC and per-token losses have none
        space["train.label_smoothing"] = ParamSpec(low=0.0, high=0.2)
    space["train.l2sp"] = ParamSpec(low=1e-4, high=0.1, log=True)
    return space | _strategy_space(cfg, search_strategy)


def _strategy_space(cfg: FitConfig, search_strategy: bool) -> dict[str, ParamSpec]:
    space = {"strategy.rank": ParamSpec(choices=[4, 8, 16]), "strategy.decay": ParamSpec(low=0.6, high=0.95)}
    blocks = _n_blocks(cfg)
    if blocks and blocks > 1:
        space["strategy.layers"] = ParamSpec(low=0, high=blocks - 1)
    if search_strategy:
        return space
    given = set(cfg.strategy.model_extra or {})  # settings the user fixed stay fixed
    return {k: v for k, v in space.items() if cfg.strategy.name in OWNERS[k] and k.split(".", 1)[1] not in given}


def _n_blocks(cfg: FitConfig) -> Optional[int]:
    """Transformer blocks of a local/zoo model, from its config.json (None: unknown)."""
    try:
        path = Path(resolve(cfg.model.name).location) / "config.json"
        config = json.loads(path.read_text())
    except Exception:  # hub ids, packaged convnets: no layer count, freeze-bottom not searched
        return None
    for key in ("num_hidden_layers", "n_layers", "num_layers", "n_layer"):
        if isinstance(config.get(key), int):
            return config[key]
    return None


def applies(key: str, strategy: str) -> bool:
    return key not in OWNERS or strategy in OWNERS[key]


def suggest(trial, space: dict[str, ParamSpec], strategy: str) -> dict[str, Any]:
    """Draw one configuration (define-by-run): the strategy first, then what applies to it."""
    values: dict[str, Any] = {}
    if "strategy.name" in space:
        strategy = values["strategy.name"] = _draw(trial, "strategy.name", space["strategy.name"])
    for key, param in space.items():
        if key != "strategy.name" and applies(key, strategy):
            values[key] = _draw(trial, key, param)
    return values


def _draw(trial, key: str, p: ParamSpec):
    if p.choices is not None:
        return trial.suggest_categorical(key, p.choices)
    if p.is_int():
        return trial.suggest_int(key, p.low, p.high, step=p.step or 1, log=p.log)
    return trial.suggest_float(key, float(p.low), float(p.high), step=p.step, log=p.log)


def apply_values(cfg: FitConfig, values: dict[str, Any]) -> FitConfig:
    """The base config with a trial's values; a switched strategy drops the base's own settings."""
    tree = cfg.model_dump(mode="json")
    name = values.get("strategy.name", cfg.strategy.name)
    if name != cfg.strategy.name:
        tree["strategy"] = {"name": name}
    for key, value in values.items():
        if key == LR_SCALE:
            tree["train"]["lr"] = _lr_anchor(cfg, name, get_task(cfg.task)) * value
        else:
            set_dotted(tree, key, value)
    return validate(tree)


def _lr_anchor(cfg: FitConfig, name: str, task) -> float:
    """The lr that lr_scale multiplies: the strategy's default, or the user's --lr moved by the
    ratio of the two strategies' defaults (a head alone needs a larger step than the whole body)."""
    if cfg.train.lr is None:  # no --lr: the switched-to strategy's own default
        return train_lr(cfg, task, name)
    return cfg.train.lr * default_lr(name, task) / default_lr(cfg.strategy.name, task)


def describe(space: dict[str, ParamSpec]) -> dict:
    return {k: p.model_dump(exclude_none=True, exclude_defaults=True) for k, p in space.items()}
