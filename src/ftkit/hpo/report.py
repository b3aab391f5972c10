"""What a study found: OUT/trials.csv, OUT/trials.png, parameter importances, a summary table."""
from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

from ftkit.io import atomic_path

log = logging.getLogger(__name__)

ATTRS = ("seconds", "steps", "best_epoch", "stopped", "lr", "run_dir")


def trials_frame(study):
    """One row per trial: number, state, value, every drawn parameter, timing, run folder."""
    import pandas as pd

    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {"trial": t.number, "state": t.state.name.lower(), "value": t.value,
               "last_reported": _last(t)}
        row.update({f"param:{k}": v for k, v in t.params.items()})
        row.update({k: t.user_attrs.get(k) for k in ATTRS})
        if "retry_of" in t.user_attrs:
            row["retry_of"] = t.user_attrs["retry_of"]
        rows.append(row)
    return pd.DataFrame(rows)


def _last(trial):
    steps = trial.intermediate_values
    return steps[max(steps)] if steps else None


def write_csv(frame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_plot(frame, path: Path, metric: str, maximize: bool) -> None:
    """Value per trial (pruned ones at their last reported score) and the best so far."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    done = frame[frame["state"] == "complete"] if len(frame) else frame
    pruned = frame[frame["state"] == "pruned"] if len(frame) else frame
    ax.scatter(done["trial"], done["value"], label="complete", color="tab:blue")
    ax.scatter(pruned["trial"], pruned["last_reported"], label="pruned (last score)", color="tab:gray", marker="x")
    if len(done):
        values = done["value"].cummax() if maximize else done["value"].cummin()
        ax.step(done["trial"], values, where="post", color="tab:orange", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric}")
    ax.legend(loc="best")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def importances(study) -> tuple[dict, str | None]:
    """(parameter -> importance, a note when they cannot be computed)."""
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}, f"needs at least 2 complete trials ({len(complete)} so far)"
    if len({t.value for t in complete}) < 2:
        return {}, "every complete trial scored the same: no parameter made a difference"
    try:
        with warnings.catch_warnings():  # few trials: the evaluator warns about small regimes
            warnings.simplefilter("ignore", UserWarning)
            found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError, ZeroDivisionError) as err:  # e.g. every trial scored the same
        return {}, f"not computable: {err}"
    found = {k: round(float(v), 4) for k, v in found.items() if not math.isnan(v)}
    return found, None if found else "no parameter shared by all complete trials"


def table(report: dict):
    """A rich table of the best trial's parameters with their importance, plus the refit's scores."""
    from rich.table import Table

    best = report.get("best") or {}
    counts = report["trials"]
    title = (f"ftkit tune: {counts['complete']} complete, {counts['pruned']} pruned, {counts['failed']} failed "
             f"in {report['seconds']:.0f}s; best validation {report['metric']} "
             + (f"{best['value']:.4f} (trial {best['trial']})" if best else "none"))
    if report.get("importances_note"):
        title += f"\nimportances: {report['importances_note']}"
    grid = Table(title=title, title_justify="left")
    grid.add_column("parameter")
    grid.add_column("best value", justify="right")
    grid.add_column("importance", justify="right")
    imp = report.get("importances") or {}
    for key, value in (best.get("params") or {}).items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        grid.add_row(key, shown, f"{imp[key]:.3f}" if key in imp else "-")
    refit = report.get("refit") or {}
    for key, value in (refit.get("test") or {}).items():
        if key == "n":
            continue
        grid.add_row(f"refit test {key}", f"{value:.4f}", "")
    return grid
