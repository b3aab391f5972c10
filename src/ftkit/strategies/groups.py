"""Layer groups, bottom to top: embeddings, blocks 0..L-1, head.

Strategies reason in groups ("freeze the first N", "lr x decay^depth"), so they work for any
model a matcher can split. Matchers are registered per architecture (``config.model_type``);
the generic fallback takes the longest ``nn.ModuleList`` of the model as its blocks, what comes
before them as embeddings, and everything else (pooler, classifier) as the head.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from ftkit.errors import StrategyError
from ftkit.registry import Registry

Params = list[tuple[str, nn.Parameter]]
MATCHERS: Registry[Callable[[nn.Module], "LayerGroups"]] = Registry("layer-group matcher")


@dataclass
class LayerGroups:
    embeddings: Params
    blocks: list[Params]  # bottom (next to the input) to top
    head: Params

    def ordered(self) -> list[Params]:
        """[embeddings, block 0, ..., block L-1, head]."""
        return [self.embeddings, *self.blocks, self.head]


def layer_groups(model: nn.Module) -> LayerGroups:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    matcher = MATCHERS.get(model_type) if model_type in MATCHERS else generic_groups
    return matcher(model)


def generic_groups(model: nn.Module) -> LayerGroups:
    name, blocks = _longest_module_list(model)
    if blocks is None:
        raise StrategyError(f"cannot find the layer blocks of {type(model).__name__}: no nn.ModuleList; "
                            "register a matcher in ftkit.strategies.groups.MATCHERS")
    prefix = f"{name}."
    per_block: list[Params] = [[] for _ in blocks]
    before: Params = []
    after: Params = []
    seen_blocks = False
    for pname, param in model.named_parameters():
        if pname.startswith(prefix):
            index = int(pname[len(prefix):].split(".", 1)[0])
            per_block[index].append((pname, param))
            seen_blocks = True
        else:
            (after if seen_blocks or _is_head(pname, model) else before).append((pname, param))
    return LayerGroups(before, per_block, after)


def _longest_module_list(model: nn.Module):
    best_name, best = "", None
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > (len(best) if best is not None else 0):
            best_name, best = name, module
    return best_name, best


def _is_head(pname: str, model: nn.Module) -> bool:
    # Parameters outside the pretrained body (e.g. `classifier.*`) belong to the new head even
    # when they are registered before the body.
    prefix = getattr(model, "base_model_prefix", "")
    return bool(prefix) and hasattr(model, prefix) and not pname.startswith(prefix + ".")


def head_modules(model: nn.Module) -> list[str]:
    """Names of the top-level modules that form the new task head (not pretrained)."""
    prefix = getattr(model, "base_model_prefix", "")
    if prefix and hasattr(model, prefix):
        names = [name for name, child in model.named_children()
                 if name != prefix and any(True for _ in child.parameters())]
    else:
        names = sorted({pname.split(".")[0] for pname, _ in layer_groups(model).head})
    if not names:
        raise StrategyError(f"cannot find the task head of {type(model).__name__}")
    return names
