"""Reading what a folder holds, tolerantly: a report renders what is there and skips the rest."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Which files mark which kind of folder; checked in this order (an auto folder also holds a
# doctor.json, a tune folder run folders, so the outer-loop marks come first).
KINDS = (("auto", "auto.json"), ("tune", "tune.json"), ("compare", "comparison.json"),
         ("cv", "cv.json"), ("seeds", "seeds.json"), ("run", "summary.json"))


def kind(folder: Path) -> str | None:
    for name, mark in KINDS:
        if (folder / mark).is_file():
            return name
    return None


def read_json(path: Path) -> Any | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        log.warning("report: skipping %s (%s)", path, err)
        return None


def read_jsonl(path: Path) -> list[dict]:
    """metrics.jsonl; a torn last line (a killed run) is skipped."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def read_csv(path: Path):
    if not path.is_file():
        return None
    import pandas as pd

    try:
        return pd.read_csv(path)
    except (ValueError, OSError) as err:
        log.warning("report: skipping %s (%s)", path, err)
        return None


def inner(folder: Path, run_dir: str | None, name: str | None = None) -> Path | None:
    """A run folder named in an outer loop's JSON. The folder's own sub-folder comes first: the
    recorded path may be absolute or relative to where the command ran, and the folder may have
    been copied or moved since (its old location may still hold the original)."""
    candidates = [folder / name] if name else []
    if run_dir:
        candidates += [folder / Path(run_dir).name, Path(run_dir)]
    return next((c for c in candidates if c.is_dir()), None)


def href(folder: Path, target: Path) -> str:
    """A relative link, so the pages still link to each other after the folder is copied."""
    from urllib.parse import quote

    # quoted: folder names like `full+l2sp=0.01` (compare variants) or with '#' / spaces stay links
    return quote(Path(os.path.relpath(target.resolve(), folder.resolve())).as_posix())


def scalars(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("n", "words")}
