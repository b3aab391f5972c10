"""Strategy experiments: the same data, budget and seed through `fit`, once per strategy.

An outer loop over the one `fit` (no second training loop). Writes, in the compare folder:
one run folder per strategy, comparison.json, comparison.csv and comparison.png.
"""
from __future__ import annotations

import logging
import multiprocessing
import re
from pathlib import Path

import pandas as pd

from ftkit.config import FitConfig, parse_set, set_dotted, to_dict, validate
from ftkit.errors import ConfigError, FtkitError
from ftkit.evaluation.metrics import UNITS
from ftkit.io import atomic_path, write_json
from ftkit.locks import folder_lock
from ftkit.reporting import after_run
from ftkit.runs.precheck import precheck
from ftkit.strategies import get_strategy

log = logging.getLogger(__name__)

VARIANT = re.compile(r"^([\w-]+)\s*(?:\[(.*)\])?$")
COLUMNS = ["strategy", "metric", "test", "validation", "lr", "train_seconds", "samples_per_second",
           "trainable_params", "total_params", "peak_memory_mb", "retained_pct", "run_dir"]


def compare(cfg: FitConfig, strategies: list[str], out: Path, *, overwrite: bool = False,
            resume: bool = False, quiet: bool = False) -> pd.DataFrame:
    """`strategies`: names, or variants with their own settings, e.g. `full[train.l2sp=0.01]` or
    `full[retention.rehearsal=0.2; train.epochs=3]` (forgetting mitigations side by side)."""
    if not strategies:
        raise ConfigError("--strategies: name at least one strategy (see `ftkit strategies`)")
    variants = [parse_variant(item) for item in strategies]
    for _, name, _ in variants:
        get_strategy(name)  # unknown names fail before any training
    configs = [(label, name, variant_config(cfg, name, sets, out / label)) for label, name, sets in variants]
    with folder_lock(out):  # one compare per folder at a time
        return _compare_all(configs, out, resume, overwrite, quiet)


def _compare_all(configs: list, out: Path, resume: bool, overwrite: bool, quiet: bool) -> pd.DataFrame:
    rows = []
    for name, _, run_cfg in configs:
        run_dir = out / name
        if resume and (run_dir / "summary.json").is_file():
            log.info("%s: already finished, reusing %s", name, run_dir)
        else:
            log.info("strategy %s -> %s", name, run_dir)
            _fit_apart(name, run_cfg, resume and (run_dir / "config.yaml").is_file(), overwrite, quiet)
        rows.append(_row(name, run_dir))
    table = pd.DataFrame(rows, columns=COLUMNS)
    _save(table, out)
    after_run(out)  # report.html: the table, plots, and links to each strategy's report
    return table


def precheck_compare(cfg: FitConfig, strategies: list[str], out: Path, *, resume: bool, overwrite: bool) -> None:
    """Raise what `compare(cfg, strategies, out, ...)` raises before its first strategy trains (in a
    process of its own, which imports torch): the variants' names and settings, then that run."""
    variants = [parse_variant(item) for item in strategies]
    for _, name, _ in variants:
        get_strategy(name)
    runs = [variant_config(cfg, name, sets, out / label) for label, name, sets in variants]
    if runs:  # none: compare says so
        precheck(runs[0], resume=resume, overwrite=overwrite)


def split_variants(text: str) -> list[str]:
    """'full,lora,full[train.l2sp=0.01]' -> its items (commas inside [...] stay)."""
    items, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    return [item.strip() for item in items + [current] if item.strip()]


def parse_variant(item: str) -> tuple[str, str, list[str]]:
    """'full[train.l2sp=0.01; model.dropout=0.2]' -> (folder label 'full+l2sp=0.01+dropout=0.2',
    strategy 'full', ['train.l2sp=0.01', 'model.dropout=0.2'])."""
    match = VARIANT.match(item)
    if not match:
        raise ConfigError(f"--strategies {item!r}: expected NAME or NAME[key=value; key=value], "
                          "e.g. full[train.l2sp=0.01]")
    sets = [part.strip() for part in (match[2] or "").split(";") if part.strip()]
    label = match[1] + "".join(f"+{key.split('.')[-1]}={value}" for key, value in map(parse_set, sets))
    return label, match[1], sets


def variant_config(cfg: FitConfig, name: str, sets: list[str], out: Path) -> FitConfig:
    tree = to_dict(cfg)
    for key, value in map(parse_set, sets):
        set_dotted(tree, key, value)
    tree["strategy"] = {**tree["strategy"], "name": name}
    tree["out"] = str(out)
    return validate(tree)


def _fit_apart(name: str, cfg: FitConfig, resume: bool, overwrite: bool, quiet: bool) -> None:
    """Each strategy trains in a fresh process: its peak memory and speed are its own, not
    inflated by what earlier strategies left allocated."""
    process = multiprocessing.get_context("spawn").Process(
        target=_fit_child, args=(to_dict(cfg), resume, overwrite, quiet, logging.getLogger().level))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise FtkitError(f"strategy {name!r} failed (exit status {process.exitcode}); see the error above")


def _fit_child(config: dict, resume: bool, overwrite: bool, quiet: bool, level: int) -> None:
    import sys

    from ftkit.runs.fit import fit_run

    logging.basicConfig(level=level, format="%(message)s", force=True)
    try:
        fit_run(FitConfig.model_validate(config), resume=resume, overwrite=overwrite, quiet=quiet,
                command=["ftkit", "compare"])
    except FtkitError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def _row(name: str, run_dir: Path) -> dict:
    import json

    s = json.loads((run_dir / "summary.json").read_text())
    metric = s["best"]["metric"] if s["best"]["metric"] != "loss" else "accuracy"
    return {"strategy": name, "metric": metric,
            "test": s["metrics"].get("test", {}).get(metric), "validation": s["metrics"].get("validation", {}).get(metric),
            "lr": s["hyperparameters"]["lr"],
            "train_seconds": s["timing"]["train_seconds"], "samples_per_second": s["timing"]["samples_per_second"],
            "trainable_params": s["params"]["trainable"], "total_params": s["params"]["total"],
            "peak_memory_mb": s["peak_memory_mb"],
            "retained_pct": s.get("retention", {}).get("retained_pct"),  # with --reference-data (forgetting)
            "run_dir": str(run_dir)}


def _save(table: pd.DataFrame, out: Path) -> None:
    write_json(out / "comparison.json", table.to_dict(orient="records"))
    with atomic_path(out / "comparison.csv") as tmp:
        table.to_csv(tmp, index=False)
    plot(table, out / "comparison.png")


def plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    panels = [("test", f"test {table['metric'].iloc[0]}"), ("train_seconds", "train seconds"),
              ("trainable_params", "trainable parameters")]
    for ax, (column, title) in zip(axes, panels):
        ax.barh(table["strategy"], table[column].fillna(0), color="#4C72B0")
        ax.set_title(title)
        ax.invert_yaxis()
    if table["metric"].iloc[0] not in UNITS:  # a 0..1 score; an error in the target's units has no fixed top
        axes[0].set_xlim(max(0.0, float(table["test"].min() or 0) - 0.1), 1.0)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
