"""Label-noise candidates: confident learning (cleanlab) on out-of-fold probabilities.

The frozen pretrained body turns every labelled row into a feature vector (the input of the task
head, through the same on-disk cache as the linear probe); a logistic regression trained on the
other folds gives each row probabilities it never saw its own label for; cleanlab then ranks
the rows whose given label the probe confidently disagrees with.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from ftkit.data.findings import Context, Finding

log = logging.getLogger(__name__)

WEAK_PROBE = 0.85  # out-of-fold accuracy below which the candidate list is mostly hard rows


def out_of_fold(features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """(n, classes) probabilities, each row from a logistic regression that did not train on it.

    Stratified folds; fewer when the smallest class has fewer rows than `folds` (at least 2).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from threadpoolctl import threadpool_limits

    k = max(2, min(folds, int(np.bincount(labels).min())))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5))
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    # One BLAS thread: next to torch's threads (and on shared CPUs) a multi-threaded BLAS made these
    # small solves ~50x slower (27 s instead of 0.6 s for 3,000 x 384).
    with threadpool_limits(limits=1):
        return cross_val_predict(probe, features, labels, cv=cv, method="predict_proba")


def ranked_issues(labels: np.ndarray, probs: np.ndarray) -> list[int]:
    """Row indices cleanlab flags as likely mislabelled, most likely first."""
    from cleanlab.filter import find_label_issues

    return [int(i) for i in find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")]


def candidates(features: np.ndarray, labels: np.ndarray, names: list[str], folds: int = 5,
               seed: int = 0, probs: np.ndarray | None = None) -> list[dict]:
    """Ranked candidates: position, given and suggested label, the probe's confidence in each."""
    probs = out_of_fold(features, labels, folds, seed) if probs is None else probs
    out = []
    for i in ranked_issues(labels, probs):
        best = int(probs[i].argmax())
        out.append({"index": i, "given": names[labels[i]], "suggested": names[best],
                    "p_given": round(float(probs[i, labels[i]]), 4), "p_suggested": round(float(probs[i, best]), 4)})
    return out


def check(ctx: Context) -> Finding:
    why = _unsupported(ctx)
    if why:
        return Finding("label-noise", "skipped", 0, why)
    if ctx.label_sets:
        return _check_sets(ctx)
    tick = time.perf_counter()
    rows, labels = _labelled_rows(ctx)
    counts = np.bincount(labels, minlength=len(ctx.labels))
    keep = [k for k, y in enumerate(labels) if counts[y] >= 2]  # a class needs one row per side of a fold
    try:
        features = _features(ctx)
    except Exception as err:  # noqa: BLE001  (no model offline, a head that takes no vector, ...)
        return Finding("label-noise", "skipped", 0, f"no features from {ctx.cfg.model.name!r}: {err}",
                       "pass --model with an installed model, or --no-label-noise")
    present = sorted(set(labels[keep].tolist()))
    remap = {c: n for n, c in enumerate(present)}
    y = np.array([remap[c] for c in labels[keep]])
    probs = out_of_fold(features[keep], y, ctx.options.folds, ctx.cfg.seed)
    found = candidates(features[keep], y, [ctx.labels[c] for c in present], probs=probs)
    details = [ctx.ref(rows[keep[c["index"]]]) | {k: v for k, v in c.items() if k != "index"} for c in found]
    seconds = round(time.perf_counter() - tick, 2)
    accuracy = float((probs.argmax(axis=1) == y).mean())
    what = (f"probe on frozen {ctx.cfg.model.name} features: out-of-fold accuracy {accuracy:.3f}, {len(keep)} rows, "
            f"{min(ctx.options.folds, int(np.bincount(y).min()))}-fold, {seconds}s")
    if accuracy < WEAK_PROBE:
        # cleanlab flags roughly the rows the probe gets confidently wrong: with a weak probe that is
        # mostly hard rows, not wrong labels; the ranking (most likely first) is still useful.
        what += "; a weak probe: only the top of the list is likely mislabelled"
    if not details:
        return Finding("label-noise", "ok", 0, f"no likely mislabelled rows ({what})")
    share = len(details) / max(len(keep), 1)
    return Finding("label-noise", "warn", len(details), f"{len(details)} likely mislabelled row(s) "
                   f"({share:.1%}; {what}); top: " + ", ".join(
                       f"{d['split']}:{d['row']} {d['given']}->{d['suggested']}" for d in details[:3]),
                   "review the listed rows (most likely first) and relabel those that are wrong; a weak "
                   "probe also flags hard but correct rows", details[:ctx.options.listed], details)


def _unsupported(ctx: Context) -> str:
    if ctx.kind == "ner":
        return "not for token classification: confident learning here ranks one label per row, not per word"
    if ctx.kind == "asr":
        return "not for speech recognition: transcripts are not classes to confidently disagree with"
    if ctx.numeric_target:
        return "not for regression: confident learning ranks classes, and a numeric target has none"
    if ctx.reader is None:
        return "no task to build the frozen features through (Context.reader)"
    if ctx.kind == "audio" and not ctx.reader.capabilities.feature_probe:
        # the probe needs one frozen vector per clip from the task's build/encode (selection.features)
        return (f"not yet for {ctx.task}: frozen features per clip are not available to the probe "
                "(exact and same-sample duplicates, conflicts and imbalance are checked)")
    if ctx.parts[0].labels is None:
        return "no labels"
    return ""


def _labelled_rows(ctx: Context) -> tuple[list[int], np.ndarray]:
    index = {name: i for i, name in enumerate(ctx.labels)}
    rows = [g for g in range(len(ctx.index)) if ctx.label(g) is not None]
    return rows, np.array([index[ctx.label(g)] for g in rows], dtype=np.int64)


def _features(ctx: Context) -> np.ndarray:
    """(n, dim) head inputs of every labelled row, all splits in order, from the feature cache."""
    from ftkit.data.frozen_features import frozen_features  # loads torch

    parts = [(part.split, part.examples) for part in ctx.parts]
    feats, _, _ = frozen_features(ctx.cfg, ctx.reader, ctx.labels, parts)
    return np.concatenate(feats)


# ---------------------------------------------------------------- multi-label

def out_of_fold_sets(features: np.ndarray, targets: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """(n, labels) probabilities of each label, one logistic regression per label (one-vs-rest),
    each row scored by models that did not train on it (plain shuffled folds: label sets do not
    stratify with sklearn's splitters)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    probe = make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(max_iter=2000, C=0.5)))
    with threadpool_limits(limits=1):
        return cross_val_predict(probe, features, targets, cv=KFold(folds, shuffle=True, random_state=seed),
                                 method="predict_proba")


def _check_sets(ctx: Context) -> Finding:
    """Confident learning for label sets (cleanlab's multi_label mode): rows whose given set the
    out-of-fold probe confidently disagrees with; labels too rare to sit on both sides of every
    fold are left out of the probe."""
    from cleanlab.filter import find_label_issues

    tick = time.perf_counter()
    rows = [g for g in range(len(ctx.index)) if ctx.label(g) is not None]
    index = {name: j for j, name in enumerate(ctx.labels)}
    targets = np.zeros((len(rows), len(ctx.labels)), dtype=np.int64)
    for r, g in enumerate(rows):
        targets[r, [index[label] for label in ctx.label(g)]] = 1
    folds = ctx.options.folds
    usable = np.flatnonzero((targets.sum(axis=0) >= 2 * folds) & ((1 - targets).sum(axis=0) >= 2 * folds))
    if len(usable) < 2:
        return Finding("label-noise", "skipped", 0, f"fewer than two labels with {2 * folds}+ rows carrying and "
                       "lacking them: too few to probe")
    try:
        features = _features(ctx)
    except Exception as err:  # noqa: BLE001  (no model offline, a head that takes no vector, ...)
        return Finding("label-noise", "skipped", 0, f"no features from {ctx.cfg.model.name!r}: {err}",
                       "pass --model with an installed model, or --no-label-noise")
    y = targets[:, usable]
    probs = out_of_fold_sets(features, y, folds, ctx.cfg.seed)
    given = [np.flatnonzero(row).tolist() for row in y]
    found = find_label_issues(given, probs, multi_label=True, return_indices_ranked_by="self_confidence")
    names = [ctx.labels[j] for j in usable]
    details = [ctx.ref(rows[i]) | {"given": [names[j] for j in given[i]],
                                   "suggested": [names[j] for j in np.flatnonzero(probs[i] >= 0.5)]}
               for i in (int(k) for k in found)]
    pred = probs >= 0.5
    micro = 2 * (pred & (y == 1)).sum() / max(pred.sum() + y.sum(), 1)
    what = (f"one-vs-rest probe on frozen {ctx.cfg.model.name} features: out-of-fold micro-F1 {micro:.3f}, "
            f"{len(rows)} rows, {len(usable)} labels, {folds}-fold, {round(time.perf_counter() - tick, 2)}s")
    if not details:
        return Finding("label-noise", "ok", 0, f"no likely mislabelled rows ({what})")
    top = ", ".join(f"{d['split']}:{d['row']} {'|'.join(d['given'])}->{'|'.join(d['suggested'])}" for d in details[:3])
    return Finding("label-noise", "warn", len(details), f"{len(details)} row(s) with a likely wrong label set "
                   f"({len(details) / len(rows):.1%}; {what}); top: {top}",
                   "review the listed rows (most likely first): a missing or extra label is the usual fault",
                   details[:ctx.options.listed], details)
