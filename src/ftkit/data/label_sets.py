"""Multi-label data: a set of labels per row, read from a delimited string ("news|sport", with
`--label-sep "|"`) or a JSON list (a JSONL/Parquet list cell, or a CSV cell holding `["news", "sport"]`).

A row's labels are kept as a sorted tuple of names (hashable, so the doctor's duplicate and conflict
checks compare them as they compare single labels). An empty set is refused unless
`data.allow_empty_labels` is on: a row whose labels were forgotten looks the same as a row that
truly has none, and silently training on it teaches the model to predict nothing.
"""
from __future__ import annotations

import json
from typing import Optional

import numpy as np

from ftkit.data.labels import describe, label_order, label_text
from ftkit.data.readers import Table
from ftkit.errors import DataError

LabelSet = tuple  # tuple[str, ...], sorted and without repeats


def table_label_sets(table: Table, column: str, sep: Optional[str], allow_empty: bool) -> list[LabelSet]:
    """The label set of every row; a missing cell, a non-text member or (unless allowed) an empty
    set is an error naming the first such row."""
    sets = []
    for i, value in enumerate(table.frame[column].tolist()):
        members = _members(value, sep, lambda why: DataError(f"{table.where(i)}: column {column!r} {why}"))
        if not members and not allow_empty:
            raise DataError(f"{table.where(i)}: empty label set in column {column!r}; label the row, or pass "
                            "--set data.allow_empty_labels=true if rows may truly have no label")
        sets.append(tuple(sorted(set(members))))
    return sets


def _members(value, sep: Optional[str], error) -> list[str]:
    if isinstance(value, np.ndarray):  # Parquet list cells
        value = value.tolist()
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            raise error(f"holds {describe(value)}: it starts like a JSON list but is not one") from None
    if isinstance(value, (list, tuple)):
        texts = [label_text(v) if not isinstance(v, (list, tuple, dict)) else None for v in value]
        if any(t is None for t in texts):
            raise error(f"holds {describe(value)}: every member of a label list must be a class name")
        return texts
    text = label_text(value)
    if text is None:
        return []
    if sep is None:
        return [text]
    return [part.strip() for part in text.split(sep) if part.strip()]


def holds_label_lists(path: str, column: str, look: int = 1000) -> bool:
    """Whether the label column of a table file holds label lists (JSONL/Parquet list cells, or CSV
    cells that parse as a JSON list) in its first `look` filled rows: such a column asks for a
    multi-label task even without --label-sep. An unreadable file is False here; reading it for
    training names the problem."""
    from ftkit.data.readers import read_table
    from ftkit.errors import FtkitError

    try:
        table = read_table(path)
    except (FtkitError, OSError):
        return False
    if column not in table.frame.columns:
        return False
    for value in table.frame[column].head(look).tolist():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                value = json.loads(value)
            except ValueError:
                return False
        if isinstance(value, (list, tuple)):
            return True
    return False


def set_vocabulary(sets: list[LabelSet]) -> list[str]:
    """Every label that occurs in the sets, in `label_order`'s order."""
    return label_order([label for s in sets for label in s])


def check_known_sets(examples, known: list[str]) -> None:
    """Every label of every row of `examples` (`.labels` sets, `.where(i)`) was seen in training."""
    known_set = set(known)
    for i, labels in enumerate(examples.labels or []):
        unknown = [label for label in labels if label not in known_set]
        if unknown:
            raise DataError(f"{examples.where(i)}: label {unknown[0]!r} never occurs in the training data "
                            f"(known: {', '.join(known)})")


def multi_hot(sets: list[LabelSet], names: list[str]) -> np.ndarray:
    """(n, labels) float32 targets: 1 where the row carries the label."""
    index = {name: j for j, name in enumerate(names)}
    out = np.zeros((len(sets), len(names)), dtype=np.float32)
    for i, labels in enumerate(sets):
        out[i, [index[label] for label in labels]] = 1.0
    return out


def joined(labels: LabelSet, sep: str = "|") -> str:
    return sep.join(labels)
