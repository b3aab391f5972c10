"""The head-only phase of `linear-probe` and `lp-ft`: the frozen body's features are computed once
(cached on disk), and the head trains on them through the same loop as every other run.

When the head does not take one vector per example (e.g. one per token), features cannot be
cached compactly: the head then trains behind the frozen body with full forward passes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ftkit.errors import RunDirError
from ftkit.io import atomic_path
from ftkit.runs.rundir import RunDir
from ftkit.strategies import ProbePhase
from ftkit.strategies.groups import head_modules
from ftkit.training.batches import balanced_weights
from ftkit.training.features import FeatureData, NotCacheable, body_fingerprint, cached_features
from ftkit.training.loop import Loop, LoopInputs, LoopState

log = logging.getLogger(__name__)

HEAD_FILE = "head.safetensors"  # the trained head of a finished probe phase (LP-FT)


@dataclass
class ProbeContext:
    """What the phase needs from `fit_run`."""

    model: torch.nn.Module
    task: object
    cfg: object  # FitConfig
    data: dict  # split name -> encoded split
    probe_rows: object  # rows of train scored for the overfitting diagnosis, or None
    labels: list[str]
    metric: str
    device: torch.device
    precision: str
    progress: object
    make_inputs: Callable[..., LoopInputs]  # fit_run's builder for the full-model fallback
    on_validate: Optional[Callable[[dict], bool]] = None  # fit_run's caller hook (tuning prunes)


def run_probe(ctx: ProbeContext, phase: ProbePhase, run: RunDir, resume: bool) -> tuple[LoopState, dict]:
    """Train the head; returns the loop state and a record (feature cache use, timing)."""
    train_cfg = ctx.cfg.train.model_copy(update={k: v for k, v in (("epochs", phase.epochs), ("lr", phase.lr))
                                                 if v is not None})
    with frozen_body(ctx.model):
        try:
            head_name, features, record = _features(ctx)
        except NotCacheable as why:
            log.info("%s; the head trains behind the frozen body without a feature cache", why)
            loop = Loop(ctx.make_inputs(ctx.model), train_cfg, run, ctx.progress)
            record = {"cache": "not cacheable", "reason": str(why), "feature_seconds": 0.0}
            scale = None
        else:
            head = getattr(ctx.model, head_name)
            features, scale = standardize(features, head)
            loop = Loop(probe_inputs(ctx, head, features), train_cfg, run, ctx.progress)
        record["resumed"] = bool(resume and loop.resume())
        state = loop.run_all()
        if scale is not None:
            fold(head, *scale)
    return state, record


def standardize(features: dict, head: torch.nn.Module):
    """Features scaled to zero mean, unit variance (train statistics) when the head is linear.

    Pooled features of a pretrained body can be tiny (MiniLM's pooler: std ~0.04): a head
    trained on them with a usual lr barely moves in a few epochs. On standardized features it
    converges; afterwards the scaling is folded into the head's weights (`fold`), so the model
    keeps taking raw features and nothing else changes.
    """
    if not isinstance(head, torch.nn.Linear):
        return features, None
    train = features["train"].features.astype(np.float64)
    mean = train.mean(axis=0) if head.bias is not None else np.zeros(train.shape[1])
    std = train.std(axis=0) + 1e-6
    scaled = {name: FeatureData(((part.features - mean) / std).astype(np.float32), part.labels)
              for name, part in features.items()}
    return scaled, (mean, std)


@torch.no_grad()
def fold(head: torch.nn.Linear, mean: np.ndarray, std: np.ndarray) -> None:
    """W((x - m) / s) + b == (W / s) x + (b - (W / s) m)."""
    weight = head.weight / torch.as_tensor(std, dtype=head.weight.dtype, device=head.weight.device)
    if head.bias is not None:
        head.bias -= weight @ torch.as_tensor(mean, dtype=weight.dtype, device=weight.device)
    head.weight.copy_(weight)


def probe_finished(run: RunDir) -> bool:
    return (run.path / HEAD_FILE).is_file()


def save_head(model: torch.nn.Module, run: RunDir) -> None:
    with atomic_path(run.path / HEAD_FILE) as tmp:
        save_file(_head_state(model), str(tmp))


def load_head(model: torch.nn.Module, run: RunDir) -> None:
    missing, unexpected = model.load_state_dict(load_file(str(run.path / HEAD_FILE)), strict=False)
    if unexpected or set(_head_state(model)) & set(missing):
        raise RunDirError(f"{run.path / HEAD_FILE} does not fit this model's head; start over with --overwrite")


def _head_state(model: torch.nn.Module) -> dict:
    head = tuple(f"{name}." for name in head_modules(model))
    return {k: v.detach().contiguous() for k, v in model.state_dict().items() if k.startswith(head)}


def _features(ctx: ProbeContext) -> tuple[str, dict, dict]:
    heads = head_modules(ctx.model)
    if len(heads) != 1:
        raise NotCacheable(f"the head is several modules ({', '.join(heads)})")
    head = heads[0]
    if not ctx.task.capabilities.probabilities:  # cached heads are scored by metrics_from_probs
        raise NotCacheable(f"the {ctx.task.name} task's outputs are not probabilities (a regression head's "
                           "are standardised values, mapped back by the task's own evaluation)")
    if not all(hasattr(part, "fingerprint") for part in ctx.data.values()):
        raise NotCacheable(f"the {ctx.task.name} task has no input fingerprint for the cache")
    body = body_fingerprint(ctx.model, head)
    batch = ctx.task.eval_batch(ctx.cfg)
    features, record = {}, {"splits": {}}
    for name, part in ctx.data.items():
        if name == "test":  # scored once at the end by the whole model, never during training
            continue
        feats, trailing, rec = cached_features(ctx.model, head, body, part, batch, ctx.precision, name)
        features[name] = FeatureData(feats, part.labels, trailing)
        record["splits"][name] = rec
    record["cache"] = "hit" if all(r["cache"] == "hit" for r in record["splits"].values()) else "miss"
    record["feature_seconds"] = round(sum(r["seconds"] for r in record["splits"].values()), 3)
    return head, features, record


def probe_inputs(ctx: ProbeContext, head: torch.nn.Module, features: dict) -> LoopInputs:
    criterion = ctx.task.criterion(ctx.cfg, ctx.data["train"])
    train = features["train"]
    probe = train.subset(ctx.probe_rows) if ctx.probe_rows is not None and "validation" in features else None
    return LoopInputs(
        model=head, train_data=train, val_data=features.get("validation"), train_probe=probe,
        loss=lambda h, batch: criterion(h(batch["features"]), batch["labels"]),
        evaluate=lambda h, part: _evaluate(ctx, h, part), metric=ctx.metric, seed=ctx.cfg.seed,
        device=ctx.device, precision=ctx.precision,
        sample_weights=balanced_weights(train.labels) if ctx.cfg.train.oversample else None,
        on_validate=ctx.on_validate)


@torch.inference_mode()
def _evaluate(ctx: ProbeContext, head: torch.nn.Module, part: FeatureData) -> dict:
    head.eval()
    logits = torch.cat([head(part.tensor(slice(i, i + 4096)).to(ctx.device)).float()
                        for i in range(0, len(part), 4096)])
    probs = ctx.task.scores_from_logits(logits).cpu().numpy()  # (n, classes)
    return ctx.task.metrics_from_probs(probs, part.labels, ctx.labels)


class frozen_body:
    """Only the head trains in this phase, whatever the strategy leaves trainable afterwards."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        head = tuple(f"{name}." for name in head_modules(self.model))
        self.saved = {n: p.requires_grad for n, p in self.model.named_parameters()}
        for name, param in self.model.named_parameters():
            param.requires_grad_(name.startswith(head))

    def __exit__(self, *exc):
        for name, param in self.model.named_parameters():
            param.requires_grad_(self.saved[name])

