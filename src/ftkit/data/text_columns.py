"""Several text columns as one input: `--text-column premise,hypothesis`.

One column is a plain text. Two columns are a sentence pair, encoded with the tokenizer's pair API
(`tokenizer(first, second, truncation="longest_first")`: the longer side is cut first, and BERT-style
tokenizers mark the second side with token_type_ids). Three or more columns keep that shape: the
first column is the first side, the others are joined with the tokenizer's separator token
(`" [SEP] "` for BERT) into the second side, so truncation still trims the longest side and no column
is cut off whole before another is touched.

Everything that sees an input as one string (the doctor's duplicate, near-duplicate and leakage keys,
split keys that keep duplicates on one side, the `text` column of predictions.csv) gets the columns
joined with SEGMENT_MARK; `near_dup.normalise` normalises each side on its own and keeps the mark, so
two rows are duplicates only when every column is (("a b", "c") and ("a", "b c") stay apart).
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

from ftkit.data.labels import describe, is_blank, is_scalar
from ftkit.data.readers import Table
from ftkit.errors import DataError

log = logging.getLogger(__name__)

SEGMENT_MARK = " \u2016 "  # " ‖ ": between the columns of one input when it is shown or keyed as one string


def split_columns(spec: str) -> tuple[str, ...]:
    """'premise,hypothesis' -> ('premise', 'hypothesis') (the config has checked the names)."""
    return tuple(name.strip() for name in spec.split(","))


def joined(segments: Sequence[str]) -> str:
    return SEGMENT_MARK.join(segments)


def read_columns(table: Table, columns: tuple[str, ...], drop_empty: bool) -> tuple[Table, list[tuple[str, ...]]]:
    """(the table without skipped rows, one tuple of texts per row); every column must exist, and an
    empty value in any of them fails with its file, line and column unless `drop_empty`."""
    for column in columns:
        table.require(column, "--text-column")
    table = drop_or_fail_empty(table, columns, drop_empty)
    values = [table.frame[c].tolist() for c in columns]
    for column, column_values in zip(columns, values):
        for i, v in enumerate(column_values):
            if not is_scalar(v):
                raise DataError(f"{table.where(i)}: column {column!r} holds {describe(v)}, not text")
    return table, [tuple(str(v) for v in row) for row in zip(*values)]


def drop_or_fail_empty(table: Table, columns: tuple[str, ...], drop_empty: bool) -> Table:
    """Rows with an empty value in any text column: an error naming the first (file, line, column),
    or skipped (and counted) with data.drop_empty."""
    empty: dict[int, str] = {}  # row -> the first of its text columns that is empty
    for column in columns:
        for i, v in enumerate(table.frame[column].tolist()):
            if is_blank(v):
                empty.setdefault(i, column)
    if not empty:
        return table
    if not drop_empty:
        first = min(empty)
        raise DataError(f"{table.where(first)}: empty text in column {empty[first]!r} ({len(empty)} such "
                        "rows); fill them in, or pass --set data.drop_empty=true to skip them")
    log.warning("%s: skipped %d rows with empty text", table.path, len(empty))
    kept = [i for i in range(len(table)) if i not in empty]
    if not kept:
        named = f"column {columns[0]!r}" if len(columns) == 1 else f"one of the columns {', '.join(map(repr, columns))}"
        raise DataError(f"{table.path}: every row has empty text in {named}")
    return table.subset(kept)


def input_segments(x, columns: tuple[str, ...], where: str) -> tuple[str, ...]:
    """One predict() input of a model that reads several text columns: a list of len(columns)
    strings (in column order) or an object with a string under each column name."""
    names = ", ".join(columns)
    if isinstance(x, dict):
        missing = [c for c in columns if c not in x]
        extra = sorted(set(x) - set(columns))
        if missing or extra:
            problem = f"no {missing[0]!r}" if missing else f"unknown key {extra[0]!r}"
            raise DataError(f"{where}: {problem}; this model reads the text columns {names}")
        values = [x[c] for c in columns]
    elif isinstance(x, (list, tuple)):
        if len(x) != len(columns):
            raise DataError(f"{where}: {len(x)} text(s), this model reads {len(columns)} ({names})")
        values = list(x)
    else:
        what = "a single string" if isinstance(x, str) else describe(x)
        raise DataError(f"{where}: got {what}; this model reads {len(columns)} texts per input ({names}): "
                        f"give a list of {len(columns)} strings or an object with those keys")
    for column, v in zip(columns, values):
        if not isinstance(v, str) or not v.strip():
            what = "empty" if isinstance(v, str) else f"{describe(v)}, not a string"
            raise DataError(f"{where}: {column!r} is {what}; each column needs a non-empty string")
    return tuple(values)


def tokenizer_sides(segments: list[tuple[str, ...]], sep: Optional[str]) -> tuple[list[str], list[str]]:
    """(first sides, second sides) for the tokenizer's pair API; three or more columns: the second
    side is the columns after the first, joined by the separator token."""
    glue = f" {sep} " if sep else "\n"  # a tokenizer with no separator token (rare): a line break
    return [s[0] for s in segments], [glue.join(s[1:]) for s in segments]
