"""Seeded, stratified hold-out splits (multi-label rows: iterative stratification)."""
from __future__ import annotations

import logging
from collections import Counter
from typing import Optional

import numpy as np

from ftkit.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def holdout(labels: list, size: float, seed: int, groups: Optional[list] = None,
            sets: bool = False) -> tuple[list[int], list[int]]:
    """Split row indices into (keep, held_out), stratified by label when every class allows it
    (`sets`: each label is a tuple of labels, split by iterative stratification).

    Stratification needs at least two examples per class; otherwise the split is random and
    a warning says which classes were too small. Rows sharing a group (duplicate inputs, see
    `same_input_keys`) land on the same side, so a split ftkit makes never leaks.
    """
    from sklearn.model_selection import train_test_split  # here: bad data is refused before sklearn loads

    if groups is not None:
        return _grouped(groups, lambda reps: holdout([labels[r] for r in reps], size, seed, sets=sets))
    if sets:
        return _split_sets(labels, size, seed)
    index = np.arange(len(labels))
    counts = Counter(labels)
    rare = [str(label) for label, n in counts.items() if n < 2]
    stratify = None if rare else labels
    if rare:
        log.warning("classes with a single example (%s): split is random, not stratified", ", ".join(rare[:5]))
    n_held = max(1, int(round(size * len(labels))))
    if stratify is not None and n_held < len(counts):
        n_held = len(counts)  # stratified splits need one row per class at least
    try:
        keep, held = train_test_split(index, test_size=n_held, random_state=seed, stratify=stratify)
    except ValueError as err:  # too few rows for the share asked, or for one row per class
        raise DataError(f"cannot hold out {size:.0%} of {len(labels)} rows ({err}); pass --validation/"
                        "--test files, or --set data.validation_size=0 / data.test_size=0") from None
    return sorted(keep.tolist()), sorted(held.tolist())


def _split_sets(label_sets: list, size: float, seed: int) -> tuple[list[int], list[int]]:
    n_held = max(1, int(round(size * len(label_sets))))
    if n_held >= len(label_sets):
        raise DataError(f"cannot hold out {size:.0%} of {len(label_sets)} rows; pass --validation/--test files, "
                        "or --set data.validation_size=0 / data.test_size=0")
    part = iterative_split(label_sets, [len(label_sets) - n_held, n_held], seed)
    return np.flatnonzero(part == 0).tolist(), np.flatnonzero(part == 1).tolist()


def iterative_split(label_sets: list, sizes: list[float], seed: int) -> np.ndarray:
    """(n,) part of each row: Sechidis, Tsoumakas & Vlahavas (2011), "On the stratification of
    multi-label data". Parts are filled label by label, rarest label first, each of its rows going
    to the part that still wants the most of that label (ties: the part wanting the most rows,
    then at random), so every label is spread over the parts in proportion to `sizes` (row counts
    or shares) as far as its count allows; rows with no label fill what is left."""
    rng = np.random.default_rng(seed)
    n = len(label_sets)
    names = sorted({label for s in label_sets for label in s})
    index = {name: j for j, name in enumerate(names)}
    y = np.zeros((n, len(names)), dtype=bool)  # (rows, labels)
    for i, s in enumerate(label_sets):
        y[i, [index[label] for label in s]] = True
    share = np.asarray(sizes, dtype=np.float64) / np.sum(sizes)
    want_rows = share * n  # (parts,)
    want = np.outer(share, y.sum(axis=0))  # (parts, labels)
    part = np.full(n, -1)
    left = y.copy()  # labels of the rows not yet placed
    while left.any():
        counts = left.sum(axis=0).astype(np.float64)
        counts[counts == 0] = np.inf
        rarest = rng.choice(np.flatnonzero(counts == counts.min()))
        for i in rng.permutation(np.flatnonzero(left[:, rarest])):
            best = _argmax_ties(want[:, rarest], want_rows, rng)
            part[i] = best
            want[best, y[i]] -= 1
            want_rows[best] -= 1
            left[i] = False
    for i in rng.permutation(np.flatnonzero(part < 0)):  # rows with an empty label set
        best = rng.choice(np.flatnonzero(want_rows == want_rows.max()))
        part[i] = best
        want_rows[best] -= 1
    return part


def _argmax_ties(first: np.ndarray, second: np.ndarray, rng) -> int:
    top = np.flatnonzero(first == first.max())
    if len(top) > 1:
        top = top[second[top] == second[top].max()]
    return int(rng.choice(top))


def limit_train(splits, cfg):
    """data.train_rows: a seeded, stratified sample of the training rows; held-out splits untouched."""
    n = cfg.data.train_rows
    if not n or n >= len(splits.train):
        return splits
    labels = getattr(splits.train, "labels", None)  # NER sentences have no single label
    if splits.numeric_target:  # regression: numbers are no classes to stratify by
        labels = None
    if splits.label_sets:  # multi-label: iterative stratification of the label sets
        part = iterative_split(labels, [n, len(labels) - n], split_seed(cfg))
        keep, stratify = np.flatnonzero(part == 0), labels
    else:
        stratify = labels if labels is not None and min(Counter(labels).values()) >= 2 else None
        if stratify is not None and n < len(set(labels)):
            raise ConfigError(f"--set data.train_rows={n}: fewer rows than the {len(set(labels))} classes")
        from sklearn.model_selection import train_test_split

        keep, _ = train_test_split(np.arange(len(splits.train)), train_size=n, random_state=split_seed(cfg),
                                   stratify=stratify)
    keep, before = sorted(keep.tolist()), len(splits.train)
    splits.train = splits.train.subset(keep)
    splits.record["train_rows"] = {"n": n, "of": before, "seed": split_seed(cfg), "stratified": stratify is not None}
    record = splits.record.setdefault("train", {})
    for key, value in list(record.items()):  # the source rows/lines/images that train now holds
        if isinstance(value, list) and len(value) == before:
            record[key] = [value[i] for i in keep]
    record["n"] = n
    return splits


def split_seed(cfg) -> int:
    """The seed of held-out splits and folds: `data.split_seed`, else the run's seed. Fixing it
    keeps the test set identical across training seeds (`--seeds`)."""
    return cfg.seed if cfg.data.split_seed is None else cfg.data.split_seed


def fold_split(strata: Optional[list], n: int, folds: int, fold: int, seed: int,
               groups: Optional[list] = None, sets: bool = False) -> tuple[list[int], list[int]]:
    """Row indices (keep, held_out) of fold `fold` of a seeded k-fold split, stratified by label
    when every class has at least `folds` rows (else a plain shuffled k-fold, with a warning).
    Duplicate inputs (same group) share a fold."""
    if groups is not None:
        return _grouped(groups, lambda reps: fold_split(None if strata is None else [strata[r] for r in reps],
                                                       len(reps), folds, fold, seed, sets=sets))
    if not 2 <= folds <= n:
        raise ConfigError(f"--folds {folds}: need 2 <= folds <= the {n} training rows")
    if not 0 <= fold < folds:
        raise ConfigError(f"--set data.cv_fold={fold}: folds are numbered 0..{folds - 1}")
    index = np.arange(n)
    if sets and strata is not None:  # label sets: iterative stratification into k equal parts
        part = iterative_split(strata, [1.0] * folds, seed)
        return np.flatnonzero(part != fold).tolist(), np.flatnonzero(part == fold).tolist()
    small = [str(k) for k, c in Counter(strata or []).items() if c < folds]
    if strata is not None and small:
        log.warning("classes with fewer than %d rows (%s): folds are not stratified", folds, ", ".join(small[:5]))
    from sklearn.model_selection import KFold, StratifiedKFold

    if strata is not None and not small:
        parts = StratifiedKFold(folds, shuffle=True, random_state=seed).split(index, strata)
    else:
        parts = KFold(folds, shuffle=True, random_state=seed).split(index)
    keep, held = list(parts)[fold]
    return sorted(keep.tolist()), sorted(held.tolist())


def split_parts(train, read, data_cfg, seed: int, record: dict, stratify: bool | str):
    """(train, validation, test): the --test / --validation files when given, else parts held out of
    the training file (a cross-validation fold as test), stratified by `train.labels` when
    `stratify` (`"sets"`: labels are label sets, iteratively stratified), copies of one input always
    on one side. The split settings land in `record`."""
    d = data_cfg
    test = read(d.test) if d.test else None
    if d.cv_folds:
        train, test = take_fold(train, train.labels if stratify else None, d, seed, record, stratify == "sets")
    elif test is None and d.test_size > 0:
        train, test = hold_out(train, d.test_size, seed, "test", record, stratify)
    validation = read(d.validation) if d.validation else None
    if validation is None and d.validation_size > 0:
        train, validation = hold_out(train, d.validation_size, seed + 1, "validation", record, stratify)
    return train, validation, test


def hold_out(examples, size: float, seed: int, name: str, record: dict, stratify: bool | str):
    labels = examples.labels if stratify else [0] * len(examples)
    keep, held = holdout(labels, size, seed, same_input_keys(examples), sets=stratify == "sets")
    record[f"{name}_split"] = {"from": "train", "size": size, "seed": seed}
    return examples.subset(keep), examples.subset(held)


def take_fold(examples, strata: Optional[list], data_cfg, seed: int, record: dict, sets: bool = False):
    """(train, test) for cross-validation: the test part is one fold of the training file."""
    if data_cfg.test:
        raise ConfigError("cross-validation scores each fold on held-out rows of --train; drop --test "
                          "(score a separate file on a fold's run with `ftkit eval`)")
    keep, held = fold_split(strata, len(examples), data_cfg.cv_folds, data_cfg.cv_fold, seed,
                            same_input_keys(examples), sets=sets)
    record["test_split"] = {"from": "train", "fold": data_cfg.cv_fold, "folds": data_cfg.cv_folds, "seed": seed}
    return examples.subset(keep), examples.subset(held)


def same_input_keys(examples) -> list[str]:
    """One key per example, equal for inputs the data doctor calls duplicates (text identical
    after case, punctuation and spacing; the same pixels; the same audio samples): they must not
    straddle a split."""
    from ftkit.data.near_dup import audio_keys, image_keys, normalise

    if hasattr(examples, "texts"):
        return [normalise(t) for t in examples.texts]
    if hasattr(examples, "tokens"):
        return [normalise(" ".join(t)) for t in examples.tokens]
    if hasattr(examples, "transcripts"):  # AudioExamples (before images: both have paths)
        return audio_keys(examples.paths).normalised
    return image_keys(examples.paths).normalised


def _grouped(groups: list, split) -> tuple[list[int], list[int]]:
    """Run `split` on one representative row per group, then give every row its group's side."""
    members: dict = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    blocks = list(members.values())
    if len(blocks) == len(groups):  # no duplicates: the plain split, row for row
        return split(list(range(len(groups))))
    keep, held = split([b[0] for b in blocks])
    return sorted(i for j in keep for i in blocks[j]), sorted(i for j in held for i in blocks[j])
