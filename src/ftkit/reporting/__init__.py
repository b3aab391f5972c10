"""report.html for any ftkit output folder, and the model card of a run's model folder.

    write_report(folder)   RUN_DIR/report.html: one self-contained page (plots embedded, CSS
                           inline, no script, nothing fetched); outer-loop folders (compare, cv,
                           seeds, tune, auto) get their table across runs + links to each run's page
    write_card(run_dir)    RUN_DIR/model/README.md: the model card
    after_run(run_dir)     both, at the end of a fit; a failure only logs a warning

The package is `reporting`, not `report`: `ftkit.report(RUN_DIR)` is the public function, and a
subpackage of that name would replace it as an attribute of `ftkit` once imported.
"""
from __future__ import annotations

import logging
from pathlib import Path

from ftkit.errors import RunDirError
from ftkit.failpoints import failpoint
from ftkit.io import atomic_path, write_text

log = logging.getLogger(__name__)

REPORT = "report.html"


def write_report(folder: str | Path) -> Path:
    """Render FOLDER/report.html from the files FOLDER holds; returns its path."""
    from ftkit.reporting import html, outer, run, sources

    folder = Path(folder)
    kind = sources.kind(folder)
    pages = {"run": lambda: run.run_page(folder), "compare": lambda: outer.compare_page(folder, _ensure),
             "cv": lambda: outer.repeat_page(folder, _ensure), "seeds": lambda: outer.repeat_page(folder, _ensure),
             "tune": lambda: outer.tune_page(folder, _ensure), "auto": lambda: outer.auto_page(folder, _ensure)}
    if kind is None:
        raise RunDirError(f"{folder}: nothing to report (no summary.json, comparison.json, cv.json, seeds.json, "
                          "tune.json or auto.json); is it a finished ftkit run or outer-loop folder?")
    title, subtitle, sections = pages[kind]()
    path = folder / REPORT
    with atomic_path(path) as tmp:
        tmp.write_text(html.page(title, subtitle, sections), encoding="utf-8")
        failpoint("report")
    return path


def _ensure(folder: Path) -> Path | None:
    """An inner run's (or study's) report, rendered now when it has none (older folders, or a
    report that failed at the end of its fit); None when the folder is not finished."""
    path = folder / REPORT
    if path.is_file():
        return path
    try:
        return write_report(folder)
    except RunDirError:
        return None


def write_card(run_dir: str | Path) -> Path | None:
    """RUN_DIR/model/README.md (replacing the one peft writes for LoRA); None without a model."""
    from ftkit.reporting.card import card_text

    run_dir = Path(run_dir)
    if not (run_dir / "model" / "ftkit.json").is_file():
        return None
    path = run_dir / "model" / "README.md"
    write_text(path, card_text(run_dir))
    return path


def after_run(folder: str | Path, *, card: bool = False) -> None:
    """The end of a fit or an outer loop: the run is finished and saved already, so a problem in
    rendering (a plot of odd data, a full disk) is logged and never fails it."""
    jobs = [("report", write_report)] + ([("model card", write_card)] if card else [])
    for what, job in jobs:
        try:
            job(folder)
        except Exception as err:  # noqa: BLE001 - any rendering error; the run itself is done
            log.warning("could not write the %s in %s: %s: %s", what, folder, type(err).__name__, err)
