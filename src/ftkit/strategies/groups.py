"""Layer groups, bottom to top: embeddings, blocks 0..L-1, head.

Strategies reason in groups ("freeze the first N", "lr x decay^depth"), so they work for any
model a matcher can split. Matchers are registered per architecture (``config.model_type``);
the generic fallback takes the longest ``nn.ModuleList`` of the model as its blocks, what comes
before them as embeddings, and everything else (pooler, classifier) as the head.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ftkit.errors import StrategyError
from ftkit.lazy import nn
from ftkit.registry import Registry

Params = list[tuple[str, "nn.Parameter"]]  # a string: nn (torch) loads on first use
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


def is_encoder_decoder(model) -> bool:
    """A model that writes text with a decoder over its encoder's outputs (Whisper)."""
    return bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))


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


def encoder_decoder_groups(model: nn.Module) -> LayerGroups:
    """Whisper-style speech models, bottom to top: the encoder's convolutions and positions; its
    blocks (the final norm with the last); the decoder's embeddings with its first block, then its
    other blocks; the decoder's final norm (the output projection is tied to the embeddings)."""
    params = dict(model.named_parameters())  # tied weights appear once
    enc, dec = "model.encoder.", "model.decoder."
    n_enc, n_dec = len(model.model.encoder.layers), len(model.model.decoder.layers)
    blocks: list[Params] = [[] for _ in range(n_enc + n_dec)]
    embeddings: Params = []
    head: Params = []
    for name, param in params.items():
        if name.startswith(enc + "layers."):
            blocks[int(name[len(enc) + 7:].split(".")[0])].append((name, param))
        elif name.startswith(enc + "layer_norm."):
            blocks[n_enc - 1].append((name, param))
        elif name.startswith(enc):
            embeddings.append((name, param))
        elif name.startswith(dec + "layers."):
            blocks[n_enc + int(name[len(dec) + 7:].split(".")[0])].append((name, param))
        elif name.startswith(dec + "layer_norm.") or not name.startswith("model."):
            head.append((name, param))
        else:  # the decoder's token and position embeddings
            blocks[n_enc].append((name, param))
    return LayerGroups(embeddings, blocks, head)


MATCHERS.register("whisper", "Whisper: encoder blocks, then decoder blocks")(encoder_decoder_groups)
