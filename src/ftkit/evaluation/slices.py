"""Metrics per slice of the test set (``--group-column``): does the model serve every group
(dialect, source, site, camera, ...) about equally well, or does a good average hide a bad group?
"""
from __future__ import annotations

import math

import numpy as np

from ftkit.errors import DataError
from ftkit.evaluation.bootstrap import macro_f1

MISSING = "(missing)"


def read_groups(examples, column: str) -> list[str]:
    """The `column` value of each example, read again from the table it came from (examples keep
    their source file and line / row number, so held-out splits of a training file work too)."""
    from ftkit.data.readers import read_table

    if examples.unit not in ("line", "row"):
        raise DataError(f"{examples.source}: --group-column {column!r} needs a table (CSV, TSV, JSONL or "
                        "Parquet); a folder of images has no columns. List the images in a table with an "
                        f"image path column and a {column!r} column instead")
    table = read_table(examples.source)
    table.require(column, "--group-column")
    value = dict(zip(table.lines, table.frame[column].tolist()))
    return [_text(value[row]) for row in examples.rows]


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or not str(value).strip():
        return MISSING
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def group_metrics(probs: np.ndarray, label_ids: np.ndarray, groups: list[str], column: str,
                  min_size: int = 10) -> dict:
    """n, accuracy and macro-F1 per group, and the largest gap between groups of >= min_size
    examples (smaller ones are reported but flagged: their score is mostly noise)."""
    pred = probs.argmax(axis=1)
    groups_arr = np.asarray(groups, dtype=object)
    per_group = {}
    for name in sorted(set(groups)):
        inside = groups_arr == name
        per_group[name] = {"n": int(inside.sum()), **_scores(label_ids[inside], pred[inside]),
                           "too_small": bool(inside.sum() < min_size)}
    return {"column": column, "min_size": min_size, "per_group": per_group, "largest_gap": largest_gap(per_group)}


def _scores(label_ids: np.ndarray, pred: np.ndarray) -> dict:
    # Macro-F1 over the classes present in this group (gold or predicted): a class the group never
    # contains says nothing about how the model serves it.
    present = np.union1d(label_ids, pred)
    index = np.searchsorted(present, label_ids) * len(present) + np.searchsorted(present, pred)
    cm = np.bincount(index, minlength=len(present) ** 2).reshape(len(present), len(present))
    return {"accuracy": round(float((label_ids == pred).mean()), 6), "macro_f1": round(macro_f1(cm), 6)}


def largest_gap(per_group: dict) -> dict | None:
    """The metric and pair of comparable groups with the widest difference (None: < 2 groups)."""
    comparable = {g: m for g, m in per_group.items() if not m["too_small"]}
    if len(comparable) < 2:
        return None
    gaps = []
    for metric in ("accuracy", "macro_f1"):
        ranked = sorted(comparable, key=lambda g: comparable[g][metric])  # stable: ties keep name order
        worst, best = ranked[0], ranked[-1]
        gap = comparable[best][metric] - comparable[worst][metric]
        gaps.append({"metric": metric, "gap": round(gap, 6), "best": best, "worst": worst})
    return max(gaps, key=lambda item: item["gap"])
