"""Frozen features: what a model's task head would receive, per example, through the on-disk
feature cache (training/features.py). Two users: the data doctor's label-noise probe
(data/label_noise.py) and model ranking (selection/features.py).
"""
from __future__ import annotations

from ftkit.config import FitConfig, StrategyConfig


def frozen_features(cfg: FitConfig, task, labels: list[str], parts: list[tuple[str, object]]):
    """Per part (name, examples): (n, dim) head inputs, (n,) label ids (None when unlabelled) and
    the cache record. The model is built once, seeded, randomized when cfg.model.init says so."""
    import torch

    from ftkit.models.loading import randomize, resolve
    from ftkit.strategies.groups import head_modules
    from ftkit.training import device as dev
    from ftkit.training.features import NotCacheable, body_fingerprint, cached_features

    if cfg.train.threads:  # only when asked: the doctor calls this too and keeps torch's default
        dev.set_threads(cfg.train.threads)
    torch.manual_seed(cfg.seed)  # the same head init as `fit`, so the body fingerprint is stable
    # built as a linear probe builds it: the features of the frozen body (e.g. the folder's pooling
    # with its Normalize, which a fine-tune whose body trains drops; models/pooling.py)
    frozen = cfg.model_copy(update={"strategy": StrategyConfig(name="linear-probe")})
    model, processor = task.build(frozen, resolve(cfg.model.name), labels)
    if cfg.model.init == "random":
        randomize(model)
    heads = head_modules(model)
    if len(heads) != 1:
        raise NotCacheable(f"the head is several modules ({', '.join(heads)})")
    model.to(dev.pick_device(cfg.train.device))
    body = body_fingerprint(model, heads[0])
    feats, ids, records = [], [], []
    for name, examples in parts:
        data = task.encode(examples, processor, cfg, labels)
        f, _, record = cached_features(model, heads[0], body, data, task.eval_batch(cfg), "fp32", name)
        feats.append(f)
        ids.append(getattr(data, "labels", None))
        records.append(record)
    return feats, ids, records
