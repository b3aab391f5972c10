"""Read tabular data files (CSV, TSV, JSONL, Parquet) with errors that name file and line.

CSV and TSV are parsed with the standard ``csv`` module rather than pandas so that every row
keeps its exact line number (quoted fields may span lines) and ragged rows are caught instead
of being padded with NaN.
"""
from __future__ import annotations

import csv
import codecs
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ftkit.errors import DataError

READERS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
# Byte-order marks of encodings that are not UTF-8 (UTF-32 first: its LE mark starts with UTF-16's).
OTHER_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


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
            have = ", ".join(map(printable, self.frame.columns))
            raise DataError(f"{self.path}: no column {column!r} ({flag}); columns are: {have}")

    def subset(self, keep: list[int]) -> "Table":
        return Table(self.path, self.frame.iloc[keep].reset_index(drop=True),
                     [self.lines[i] for i in keep], self.unit)


def table_file(table: Table, i: int, column: str, what: str, allow_outside: bool = False) -> Path:
    """The file that row `i` names in `column` (a path relative to the table's folder, or absolute).
    Paths that lead out of the table's folder (through `..` or a symlink) are refused unless
    `allow_outside` (data.allow_outside_paths): a shared table must not read whatever it names."""
    value = table.frame[column].iloc[i]
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{table.where(i)}: empty {what} path in column {column!r}")
    base = table.path.parent
    file = base / value  # an absolute value replaces the base
    try:
        found = file.is_file()
    except (OSError, ValueError):  # a name too long for the file system
        found = False
    if not allow_outside and not is_inside(file, base):
        raise DataError(f"{table.where(i)}: {what} {value!r} in column {column!r} is outside the table's "
                        f"folder {base}; move it there, or pass --set data.allow_outside_paths=true")
    if not found:
        raise DataError(f"{table.where(i)}: {what} {value!r} not found (looked for {printable(file)}; "
                        "paths are relative to the table's folder)")
    return file


def is_inside(file: Path, folder: Path) -> bool:
    """Whether `file` stays inside `folder` once `..` and symlinks are followed."""
    try:
        return file.resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError, RuntimeError):  # too long a name, a NUL byte, a symlink loop
        return True  # not a readable file either: reported as not found


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
    twice = table.frame.columns[table.frame.columns.duplicated()]
    if len(twice):
        raise DataError(f"{path}: column {printable(twice[0])!r} appears more than once; give every column its own name")
    return table


def printable(name) -> str:
    """A column name or value fit for a one-line message (a quoted CSV header may hold newlines)."""
    text = str(name)
    return text if text.isprintable() else repr(text)[1:-1]


def _read_text(path: Path, kind: str) -> Table:
    text = read_utf8(path)
    return _read_jsonl(path, text) if kind == "jsonl" else _read_delimited(path, text, kind)


def read_utf8(path: Path) -> str:
    """The file's text (UTF-8, with or without a byte-order mark); other encodings are refused
    with the line of the first byte that is not UTF-8."""
    raw = path.read_bytes()
    for bom, encoding in OTHER_BOMS:
        if raw.startswith(bom):
            raise DataError(f"{path} line 1: the file is {encoding} text (it starts with a {encoding} byte-order "
                            "mark); re-save the file as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(f"{path} line {line}: byte 0x{raw[err.start]:02x} is not valid UTF-8; "
                        "re-save the file as UTF-8") from None


def _read_delimited(path: Path, text: str, kind: str) -> Table:
    # The csv module refuses fields over 128 KiB by default; the whole file is in memory anyway.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if kind == "tsv" else ",")
    try:
        header = next(reader)
        while not header or (len(header) == 1 and not header[0].strip()):
            header = next(reader)  # blank lines before the header
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
    # Split on "\n" only: str.splitlines() also breaks at U+2028 and other characters that JSON
    # strings may hold as they are.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path} line {number}: not valid JSON ({err.msg} at column {err.colno})") from None
        except (ValueError, RecursionError) as err:  # an integer of over 4300 digits; nesting too deep
            raise DataError(f"{path} line {number}: not valid JSON ({one_line(err)})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path} line {number}: expected a JSON object per line, got {type(record).__name__}")
        records.append(record)
        lines.append(number)
    return Table(path, pd.DataFrame.from_records(records), lines, "line")


def _read_parquet(path: Path) -> Table:
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a broken file
        raise DataError(f"{path}: cannot read as Parquet ({one_line(err)})") from None
    return Table(path, frame.reset_index(drop=True), list(range(1, len(frame) + 1)), "row")


def one_line(err: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, cut to `limit` characters."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
