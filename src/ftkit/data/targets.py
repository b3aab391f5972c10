"""Numeric targets (regression): one finite number per row, read from a table's label column.

A target that is not a number, is missing, or is infinite or NaN is refused with the file, line
(or row) and column: a silently dropped or zero-filled target would bias every metric.
"""
from __future__ import annotations

import math

import numpy as np

from ftkit.data.labels import describe, is_scalar
from ftkit.data.readers import Table
from ftkit.errors import DataError


def number(value) -> float | None:
    """A cell as a float, or None when it is not a finite number (bools are not numbers here)."""
    if isinstance(value, (bool, np.bool_)) or not is_scalar(value) or value is None:
        return None
    try:
        out = float(str(value).strip()) if isinstance(value, str) else float(value)
    except ValueError:
        return None
    return out if math.isfinite(out) else None


def table_targets(table: Table, column: str) -> list[float]:
    """Every row's target as a float; the first bad cell is an error naming its row."""
    values = table.frame[column].tolist()
    out = []
    for i, value in enumerate(values):
        got = number(value)
        if got is None:
            blank = value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""
            what = "missing target" if blank else f"target {describe(value)} is not a finite number"
            raise DataError(f"{table.where(i)}: {what} in column {column!r} (--label-type number: regression "
                            "needs a finite number on every row)")
        out.append(got)
    return out


def target_scale(values) -> tuple[float, float]:
    """(mean, std) of the training targets; std 1 for a constant target (nothing to scale by)."""
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std()) if len(arr) else 1.0
    return (float(arr.mean()) if len(arr) else 0.0), (std if std > 1e-12 else 1.0)


def target_summary(values) -> dict:
    """The distribution of a numeric target, for the data doctor."""
    arr = np.asarray(values, dtype=np.float64)
    q = np.percentile(arr, [0, 25, 50, 75, 100]) if len(arr) else [float("nan")] * 5
    return {"n": int(len(arr)), "mean": float(arr.mean()) if len(arr) else None,
            "std": float(arr.std()) if len(arr) else None, "min": float(q[0]), "q25": float(q[1]),
            "median": float(q[2]), "q75": float(q[3]), "max": float(q[4]), "distinct": int(len(np.unique(arr)))}
