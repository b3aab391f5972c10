"""Raw-file schema scan for `ftkit doctor`: what `fit` would stop at, all of it at once.

`fit` stops at the first bad row with an error; the doctor reads each file itself and lists every
problem (missing columns, empty inputs, missing labels, mixed label types, unreadable images),
then loads the splits leniently so the other checks still run.
"""
from __future__ import annotations

from ftkit.data.findings import Finding
from ftkit.errors import DataError


def scan_files(cfg, task) -> list[Finding]:
    """Every raw-file problem of each configured split, for tasks that scan their files
    (`task.capabilities.schema_scan`); a file `task.scan_file` cannot read at all is one error."""
    found: list[Finding] = []
    if not task.capabilities.schema_scan:
        return found
    for split in ("train", "validation", "test"):
        path = getattr(cfg.data, split)
        if not path:
            continue
        try:
            found += task.scan_file(split, path, cfg.data)
        except DataError as err:
            found.append(Finding("schema", "error", 1, f"{split}: {err}", "fix the file as the message says"))
    return found


def _ref(split: str, table, i: int) -> dict:
    return {"split": split, "row": table.lines[i], "where": table.where(i)}


def scan_table(split: str, path: str, column: str, d) -> list[Finding]:
    """A table of texts: empty texts (per text column: `column` may name several, "premise,hypothesis"),
    missing labels, labels mixing numbers and text."""
    from ftkit.data.labels import is_blank, label_text
    from ftkit.data.readers import read_table
    from ftkit.data.text_columns import split_columns

    table = read_table(path)
    columns = split_columns(column)
    for name in columns:
        table.require(name, "--text-column")
    table.require(d.label_column, "--label-column")
    found = []
    for name in columns:
        empty = [i for i, v in enumerate(table.frame[name].tolist()) if is_blank(v)]
        if empty:
            found.append(Finding("schema", "warn" if d.drop_empty else "error", len(empty),
                                 f"{split}: {len(empty)} empty/NaN text(s) in column {name!r}",
                                 "fill them in or remove them (or --set data.drop_empty=true to skip them)",
                                 [_ref(split, table, i) for i in empty]))
    labels = [label_text(v) for v in table.frame[d.label_column].tolist()]
    missing = [i for i, v in enumerate(labels) if v is None]
    if missing:
        found.append(Finding("schema", "error", len(missing), f"{split}: {len(missing)} row(s) without a label in "
                             f"column {d.label_column!r}", "label them or remove them",
                             [_ref(split, table, i) for i in missing]))
    numeric = [i for i, v in enumerate(labels) if v is not None and v.lstrip("-").isdigit()]
    if numeric and len(numeric) < len(labels) - len(missing):
        textual = next(i for i, v in enumerate(labels) if v is not None and i not in set(numeric))
        found.append(Finding("schema", "warn", len(numeric), f"{split}: labels mix numbers and text (e.g. "
                             f"{labels[numeric[0]]!r} and {labels[textual]!r})",
                             "use one spelling per class", [_ref(split, table, numeric[0]), _ref(split, table, textual)]))
    return found


def scan_media(split: str, examples, load, d, what: str = "image") -> list[Finding]:
    """Files listed by `examples` (`.paths`, `.rows`, `.where(i)`) that `load(path)` cannot decode."""
    bad = []
    for i, file in enumerate(examples.paths):
        try:
            load(file)
        except Exception as err:  # noqa: BLE001  (Pillow raises many kinds for damaged files)
            bad.append({"split": split, "row": examples.rows[i], "where": examples.where(i),
                        "error": f"{type(err).__name__}: {err}"})
    if not bad:
        return []
    return [Finding("schema", "warn" if d.skip_bad else "error", len(bad),
                    f"{split}: {len(bad)} unreadable {what}(s)",
                    "fix or remove them (or --set data.skip_bad=true to skip them)", bad)]
