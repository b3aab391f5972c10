"""Class labels and cells read from tables, shared by every task's reader and the doctor's
schema scan: a label as text, the labels of a column, blank cells, class order, unseen labels."""
from __future__ import annotations

import math
import reprlib
from typing import Optional

import numpy as np

from ftkit.data.readers import Table
from ftkit.errors import DataError


def label_text(value) -> Optional[str]:
    """Labels may be strings or integers (or integral floats from a NaN-holed column)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def table_labels(table: Table, column: str) -> list[str]:
    """The label of every row, as text; a missing label, or one that is a list, a mapping or an
    infinite number (JSONL/Parquet can hold those), is an error naming the first such row."""
    values = table.frame[column].tolist()
    for i, value in enumerate(values):
        if not is_scalar(value) or (isinstance(value, (float, np.floating)) and math.isinf(value)):
            raise DataError(f"{table.where(i)}: label {describe(value)} in column {column!r} is not a class name "
                            "(a string or an integer)")
    labels = [label_text(v) for v in values]
    missing = [i for i, v in enumerate(labels) if v is None]
    if missing:
        raise DataError(f"{table.where(missing[0])}: missing label in column {column!r} "
                        f"({len(missing)} such rows); label them or remove them")
    return labels


def is_scalar(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, np.generic))


def describe(value) -> str:
    """What a JSONL/Parquet cell holds, short: "a list ['a', 'b']", "a mapping {}", "inf"."""
    if isinstance(value, np.ndarray):  # Parquet list cells
        value = value.tolist()
    kind = "a list " if isinstance(value, (list, tuple)) else "a mapping " if isinstance(value, dict) else ""
    return kind + reprlib.repr(value)


def is_blank(value) -> bool:
    """None, NaN or only whitespace: an empty text cell."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or not str(value).strip()


def label_order(labels: list[str]) -> list[str]:
    """Class ids follow numeric order for integer labels, alphabetical order otherwise."""
    unique = set(labels)
    if all(u.lstrip("-").isdigit() for u in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def check_known(examples, known: list[str]) -> None:
    """Every label of `examples` (`.labels`, `.where(i)`) occurs in the training classes `known`."""
    known_set = set(known)
    for i, label in enumerate(examples.labels or []):
        if label not in known_set:
            raise DataError(f"{examples.where(i)}: label {label!r} never occurs in the training data "
                            f"(known: {', '.join(known)})")
