"""Retention: how much of the original task a fine-tuned model still does (catastrophic forgetting).

`--reference-data PATH` holds inputs of the original task (labelled or not). They are measured
twice, with the same code: *before* training, on the untouched pretrained model, and *after*,
on the fine-tuned one.

- A model that comes with its own head (EfficientNet's ImageNet head, a fine-tuned classifier
  folder): the ORIGINAL head is kept aside and applied to the body's features, so "after" is
  fine-tuned body + original head. Labelled: original-task accuracy; unlabelled: prediction
  agreement (share of reference inputs whose top class is unchanged; 1.0 before by definition).
- A bare encoder (e.g. minilm-l6): labelled: linear-probe accuracy (k-fold cross-validated
  logistic regression on the head-input features, original vs fine-tuned body); unlabelled:
  representation similarity, linear CKA (Kornblith et al. 2019) between the two feature sets.

The before snapshot (features, original-head probabilities) is saved as RUN/retention_before.npz
and reused on --resume; rehearsal (training/rehearsal.py) distils from it.
"""
from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from ftkit.errors import ConfigError, DataError
from ftkit.io import atomic_path

log = logging.getLogger(__name__)

SNAPSHOT = "retention_before.npz"
MITIGATIONS = "try --set train.l2sp=0.01, --strategy lora, or --set retention.rehearsal=0.2"


# ---------------------------------------------------------------- the measures

def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two (n, d1) / (n, d2) representations of the same n inputs: 1 for identical
    ones (up to rotation and isotropic scale), near 0 for unrelated ones (Kornblith et al. 2019)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    # ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F): the feature-space form, cheap for n >> d
    cross = np.linalg.norm(y.T @ x) ** 2
    norm = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / norm) if norm > 0 else 0.0


def probe_accuracy(features: np.ndarray, labels: list[str], folds: int, seed: int) -> float:
    """k-fold cross-validated accuracy of a logistic regression on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _, counts = np.unique(labels, return_counts=True)
    k = min(folds, int(counts.min()))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    split = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return float(cross_val_score(probe, features, np.asarray(labels), cv=split).mean())


def verdict(measure: str, before: float, after: float, retained: Optional[float], cka: Optional[float] = None) -> str:
    """One plain sentence for the summary and the report (with a note when the features moved far
    although the measure held: a probe can still separate classes in a rebuilt representation)."""
    text = _verdict(measure, before, after, retained)
    if cka is not None and cka < 0.5 and "CKA" not in measure:
        text += f"; the features themselves changed a lot (linear CKA {cka:.2f})"
    return text


def _verdict(measure: str, before: float, after: float, retained: Optional[float]) -> str:
    if retained is None:
        return f"not measurable: the original model scores {before:.2f} on the reference set ({measure})"
    change = f"{before:.2f} -> {after:.2f}"
    if retained >= 95:
        return f"kept {retained:.0f}% of the reference {measure} ({change}): no real forgetting"
    if retained >= 85:
        return f"some forgetting: reference {measure} fell {change} ({retained:.0f}% kept); if it matters, {MITIGATIONS}"
    return f"forgot: reference {measure} fell {change} ({retained:.0f}% kept); {MITIGATIONS}"


# ---------------------------------------------------------------- reading

def read_reference(cfg, task):
    """The reference examples, read through `task` (one declaring the retention_reader capability;
    runs/fit.py refuses the others) with the training data's columns; labelled when the label
    column (retention.label_column, else --label-column) is in the file, or the folder has
    one sub-folder per class."""
    from ftkit.data.readers import read_table

    r, d = cfg.retention, cfg.data
    path = Path(r.reference_data)
    if not path.exists():
        raise DataError(f"--reference-data {path}: no such file or folder; pass inputs of the original task "
                        "(a table with the training data's columns, or an image folder)")
    if path.is_dir():  # an image folder: labelled when it has one sub-folder per class
        label = "folder" if any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir()) else None
    else:
        label = _label_column(read_table(path), r.label_column, d.label_column)
    return task.read_reference(str(path), label, d)


def _label_column(table, asked: Optional[str], default: str) -> Optional[str]:
    if asked is not None and asked not in table.frame.columns:
        raise DataError(f"--reference-data {table.path}: no column {asked!r} (--set retention.label_column); "
                        f"columns are: {', '.join(map(str, table.frame.columns))}")
    if asked is not None:
        return asked
    return default if default in table.frame.columns else None


def sample(examples, max_rows: int, seed: int):
    """At most max_rows examples: a seeded sample, stratified by label when there are labels."""
    n = len(examples)
    if n <= max_rows:
        return examples
    rows = np.arange(n)
    try:
        from sklearn.model_selection import train_test_split

        keep, _ = train_test_split(rows, train_size=max_rows, random_state=seed, stratify=examples.labels)
    except (ValueError, TypeError):  # unlabelled, or a class too small to stratify
        keep = np.random.default_rng(seed).choice(n, size=max_rows, replace=False)
    return examples.subset(sorted(int(i) for i in keep))


# ---------------------------------------------------------------- the original head

def original_head(model: nn.Module, source) -> tuple[Optional[str], Optional[nn.Module], list[str]]:
    """(name of the model's head module, the ORIGINAL head as a frozen module or None for a bare
    encoder, the original class names)."""
    from ftkit.models.loading import original_head_state
    from ftkit.strategies.groups import head_modules

    heads = head_modules(model)
    if len(heads) != 1:
        raise ConfigError(f"--reference-data: the head of {type(model).__name__} is several modules "
                          f"({', '.join(heads)}); retention needs one")
    name = heads[0]
    state = getattr(model, "_ftkit_original_head", None)
    folder = Path(source.location)
    if state is None and folder.is_dir():  # text models: the folder's own classifier, if it has one
        state = original_head_state(folder, heads)
    if not state:
        return name, None, []
    state = {k.removeprefix(f"{name}."): v for k, v in state.items()}
    module = _with_weights(getattr(model, name), state)
    return name, module, _class_names(folder, state)


def _with_weights(head: nn.Module, state: dict) -> nn.Module:
    """A copy of the head module carrying the original weights, whatever their shapes (the
    original head may have 1000 classes where the new one has 2)."""
    head = copy.deepcopy(getattr(head, "original_module", head))  # PEFT wraps heads it trains
    names = {n for n, _ in head.named_parameters()} | {n for n, _ in head.named_buffers()}
    if set(state) != names:
        raise ConfigError(f"--reference-data: the original head's weights ({', '.join(sorted(state)[:4])}) do not fit "
                          f"the head module ({', '.join(sorted(names)[:4])}); retention cannot apply it")
    for key, tensor in state.items():
        owner, _, leaf = key.rpartition(".")
        module = head.get_submodule(owner) if owner else head
        if leaf in module._parameters:
            module._parameters[leaf] = nn.Parameter(tensor.detach().clone().float(), requires_grad=False)
        else:
            module._buffers[leaf] = tensor.detach().clone()
        if isinstance(module, nn.Linear):
            module.out_features, module.in_features = module.weight.shape
    return head.eval().requires_grad_(False)


def _class_names(folder: Path, state: dict) -> list[str]:
    """id2label of the source folder's config, else class indices ("0", "1", ...)."""
    # the last layer's weight, by name (out_proj.weight after dense.weight, 1.weight after 0.)
    n = state[max(k for k in state if k.endswith("weight"))].shape[0]
    try:
        id2label = json.loads((folder / "config.json").read_text()).get("id2label") or {}
    except (OSError, ValueError):
        id2label = {}
    return [str(id2label.get(str(i), i)) for i in range(n)]


# ---------------------------------------------------------------- one pass over the reference set

def pooled(x: torch.Tensor) -> torch.Tensor:
    """(batch, dim) from what a head receives: pooled conv maps (batch, c, 1, 1) are flattened,
    token sequences (batch, seq, hidden) give their first token (what RoBERTa-style heads read)."""
    if x.ndim > 2 and all(d == 1 for d in x.shape[2:]):
        return x.flatten(1)
    return x[:, 0] if x.ndim == 3 else x


def head_inputs(model: nn.Module, head: str, inputs: dict) -> torch.Tensor:
    """Run the model, return what its head module received (as the head gets it)."""
    captured: list[torch.Tensor] = []
    hook = getattr(model, head).register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    try:
        model(**inputs)
    finally:
        hook.remove()
    return captured[0]


@torch.inference_mode()
def outputs(model: nn.Module, head: str, original: Optional[nn.Module], data, batch_size: int):
    """-> ((n, dim) pooled head inputs, (n, classes) original-head probabilities or None), fp32."""
    model.eval()
    device = next(model.parameters()).device
    feats, probs = None, None
    for start in range(0, len(data), batch_size):
        idx = np.arange(start, min(start + batch_size, len(data)))
        batch = {k: v.to(device) for k, v in data.batch(idx).items() if k != "labels"}
        x = head_inputs(model, head, batch)
        f = pooled(x).float().cpu().numpy()
        feats = f if feats is None else np.concatenate([feats, f])
        if original is not None:
            p = torch.softmax(original.to(device)(x.float()).float(), dim=-1).cpu().numpy()
            probs = p if probs is None else np.concatenate([probs, p])
    return feats, probs


# ---------------------------------------------------------------- before / after

@dataclass
class Reference:
    """The reference set of one run: what `fit` measures before and after training."""

    cfg: object
    path: str
    examples: object
    data: object  # the task's encoded reference inputs (no label ids)
    head: str
    original: Optional[nn.Module]  # the original head (frozen), None for a bare encoder
    classes: list[str]
    targets: Optional[np.ndarray] = None  # original-head class ids of labelled references
    before: dict = field(default_factory=dict)  # "features" (n, dim), "probs" (n, classes)

    @property
    def labelled(self) -> bool:
        return self.examples.labels is not None

    @property
    def kind(self) -> str:
        return "encoder" if self.original is None else "original-head"

    def snapshot(self, model: nn.Module, run_path: Path, resume: bool) -> None:
        """Outputs of the untouched pretrained model, computed once (reloaded on --resume)."""
        file = Path(run_path) / SNAPSHOT
        if resume and file.is_file():
            with np.load(file) as saved:
                self.before = {k: saved[k] for k in saved.files}
            if len(self.before["features"]) == len(self.data):
                return
        feats, probs = outputs(model, self.head, self.original, self.data, self.cfg.train.eval_batch_size)
        self.before = {"features": feats} | ({"probs": probs} if probs is not None else {})
        with atomic_path(file) as tmp, open(tmp, "wb") as f:
            np.savez(f, **self.before)

    def result(self, model: nn.Module) -> dict:
        """summary["retention"]: the same measure with the fine-tuned model, and a verdict."""
        feats, probs = outputs(model, self.head, self.original, self.data, self.cfg.train.eval_batch_size)
        cka = round(linear_cka(self.before["features"], feats), 4)
        agreement = None if probs is None else float((probs.argmax(1) == self.before["probs"].argmax(1)).mean())
        measure, before, after = self._scores(feats, probs, cka, agreement)
        retained = round(after / before * 100, 1) if before > 0 else None
        out = {"reference": self.path, "n": len(self.data), "labelled": self.labelled, "kind": self.kind,
               "measure": measure, "before": round(before, 4), "after": round(after, 4), "retained_pct": retained,
               "cka": cka, "rehearsal": self.cfg.retention.rehearsal,
               "verdict": verdict(measure, before, after, retained, cka)}
        if agreement is not None:
            out["agreement"] = round(agreement, 4)
        log.info("retention: %s", out["verdict"])
        return out

    def _scores(self, feats: np.ndarray, probs: Optional[np.ndarray], cka: float,
                agreement: Optional[float]) -> tuple[str, float, float]:
        if self.original is not None and self.labelled:
            return "original-task accuracy", _accuracy(self.before["probs"], self.targets), _accuracy(probs, self.targets)
        if self.original is not None:
            return "prediction agreement", 1.0, agreement
        if self.labelled:
            r, labels = self.cfg.retention, self.examples.labels
            return ("linear-probe accuracy", probe_accuracy(self.before["features"], labels, r.probe_folds, self.cfg.seed),
                    probe_accuracy(feats, labels, r.probe_folds, self.cfg.seed))
        return "representation similarity (linear CKA)", 1.0, cka


def _accuracy(probs: np.ndarray, targets: np.ndarray) -> float:
    return float((probs.argmax(1) == targets).mean())


def load_reference(cfg, task, model: nn.Module, processor, source) -> Optional[Reference]:
    """The run's reference set, read and encoded before anything is written; None without
    --reference-data. Refuses rehearsal without one."""
    r = cfg.retention
    if r.reference_data is None:
        if r.rehearsal > 0:
            raise ConfigError(f"--set retention.rehearsal={r.rehearsal}: rehearsal mixes reference examples into "
                              "training; pass them with --reference-data PATH")
        return None
    examples = sample(read_reference(cfg, task), r.max_rows, cfg.seed)
    head, original, classes = original_head(model, source)
    ref = Reference(cfg, str(r.reference_data), examples, task.encode(examples, processor, cfg, None), head,
                    original, classes)
    if ref.labelled:
        ref.targets = _targets(ref) if original is not None else None
        if original is None:
            _check_probe_labels(examples, r.probe_folds)
    log.info("reference set %s: %d inputs, %s, %s", ref.path, len(examples),
             "labelled" if ref.labelled else "unlabelled", ref.kind)
    return ref


def _targets(ref: Reference) -> np.ndarray:
    """Reference labels as original-head class ids: class names (id2label) or indices."""
    index = {name: i for i, name in enumerate(ref.classes)}
    out = []
    for i, label in enumerate(ref.examples.labels):
        if label in index:
            out.append(index[label])
        elif label.isdigit() and int(label) < len(ref.classes):
            out.append(int(label))
        else:
            shown = ", ".join(ref.classes[:5]) + (", ..." if len(ref.classes) > 5 else "")
            raise DataError(f"--reference-data {ref.examples.where(i)}: label {label!r} is not a class of the original "
                            f"head ({len(ref.classes)} classes: {shown}); use its class names or indices "
                            f"0..{len(ref.classes) - 1}, or leave the labels out to measure prediction agreement")
    return np.array(out, dtype=np.int64)


def _check_probe_labels(examples, folds: int) -> None:
    values, counts = np.unique(examples.labels, return_counts=True)
    if len(values) < 2 or counts.min() < 2:
        raise DataError(f"--reference-data {examples.source}: the linear probe needs at least two classes with two "
                        f"or more examples each (got {dict(zip(values.tolist(), counts.tolist()))}); add "
                        "examples, or leave the labels out to measure representation similarity (CKA)")
