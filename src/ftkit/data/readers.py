"""Read tabular data files (CSV, TSV, JSONL, Parquet) with errors that name file and line.

CSV and TSV are parsed with the standard ``csv`` module rather than pandas so that every row
keeps its exact line number (quoted fields may span lines) and ragged rows are caught instead
of being padded with NaN.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ftkit.errors import DataError

READERS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


@dataclass
class Table:
    """Rows of one file, with where each row came from (for error messages)."""

    path: Path
    frame: pd.DataFrame
    lines: list[int]  # 1-based line (CSV/TSV/JSONL) or row (Parquet) of each frame row
    unit: str  # "line" or "row"

    def where(self, i: int) -> str:
        return f"{self.path} {self.unit} {self.lines[i]}"

    def __len__(self) -> int:
        return len(self.frame)

    def require(self, column: str, flag: str) -> None:
        if column not in self.frame.columns:
            have = ", ".join(map(str, self.frame.columns))
            raise DataError(f"{self.path}: no column {column!r} ({flag}); columns are: {have}")

    def subset(self, keep: list[int]) -> "Table":
        return Table(self.path, self.frame.iloc[keep].reset_index(drop=True),
                     [self.lines[i] for i in keep], self.unit)


def read_table(path: str | Path) -> Table:
    path = Path(path)
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(sorted(READERS))
        raise DataError(f"{path}: unknown file type {path.suffix or '(no extension)'!r}; use one of {known}")
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a {kind.upper()} file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    table = _read_parquet(path) if kind == "parquet" else _read_text(path, kind)
    if len(table) == 0:
        raise DataError(f"{path}: no data rows")
    return table


def _read_text(path: Path, kind: str) -> Table:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(f"{path} line {line}: byte 0x{raw[err.start]:02x} is not valid UTF-8; "
                        "re-save the file as UTF-8") from None
    return _read_jsonl(path, text) if kind == "jsonl" else _read_delimited(path, text, kind)


def _read_delimited(path: Path, text: str, kind: str) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if kind == "tsv" else ",")
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{path}: file is empty") from None
    except csv.Error as err:
        raise DataError(f"{path} line 1: cannot parse header ({err})") from None
    header = [h.strip() for h in header]
    rows, lines = [], []
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) != len(header):
                raise DataError(f"{path} line {reader.line_num}: {len(row)} fields but the header has "
                                f"{len(header)}; quote fields that contain the delimiter")
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as err:
        raise DataError(f"{path} line {reader.line_num}: cannot parse ({err})") from None
    return Table(path, pd.DataFrame(rows, columns=header, dtype=object), lines, "line")


def _read_jsonl(path: Path, text: str) -> Table:
    records, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path} line {number}: not valid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path} line {number}: expected a JSON object per line, got {type(record).__name__}")
        records.append(record)
        lines.append(number)
    return Table(path, pd.DataFrame.from_records(records), lines, "line")


def _read_parquet(path: Path) -> Table:
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a broken file
        raise DataError(f"{path}: cannot read as Parquet ({err})") from None
    return Table(path, frame.reset_index(drop=True), list(range(1, len(frame) + 1)), "row")
