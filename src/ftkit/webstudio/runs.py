"""What the studio knows about runs: read from the run folders under --runs, nothing else.

A run is running while a process holds its folder's lock (locks.lock_holder), finished when
summary.json (fit) or auto.json (auto) is there, and stopped otherwise (resumable: `--resume`).
So the studio survives a page reload and its own restart: it keeps no state of its own beyond
the log of each run it started (RUNS/.studio/logs/NAME.log, to show why a run failed).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from ftkit.errors import FtkitError
from ftkit.locks import lock_holder

STUDIO = ".studio"  # RUNS/.studio: uploads and logs of the runs started here
AUTO_STAGES = ("doctor", "advise", "choose", "tune", "final")
LOWER_IS_BETTER = ("loss", "wer", "cer")


@dataclass
class RunRow:
    """One run in the Runs table."""

    name: str
    kind: str  # fit | auto
    status: str  # running | finished | stopped | failed
    task: str = ""
    model: str = ""
    strategy: str = ""
    metric: str = ""
    value: Optional[float] = None
    ci: Optional[list] = None
    seconds: Optional[float] = None
    started: float = 0.0  # unix time the folder was made
    message: str = ""  # why it failed / how far it got
    report: bool = False


@dataclass
class Progress:
    step: int = 0
    epoch: float = 0.0
    epochs: float = 0.0
    samples_per_second: Optional[float] = None
    elapsed: float = 0.0
    left: Optional[float] = None
    stage: Optional[str] = None  # auto: the stage it is in
    stages_done: list = field(default_factory=list)


def is_run(folder: Path) -> bool:
    """A run folder, or one the studio has just started (its process has not made the folder yet)."""
    if folder.name.startswith("."):
        return False
    return bool(job(folder)) or folder.is_dir() and any(
        (folder / n).is_file() for n in ("config.yaml", "auto-state.json", "auto.json", "summary.json"))


def kind_of(folder: Path) -> str:
    """fit or auto: an auto folder holds auto-state.json / auto.json and final/, not config.yaml."""
    if (folder / "config.yaml").is_file():
        return "fit"
    if any((folder / n).exists() for n in ("auto-state.json", "auto.json", "final")):
        return "auto"
    return job(folder).get("mode", "fit")


def job(folder: Path) -> dict:
    """What the studio started a run with (RUNS/.studio/jobs/NAME.json: mode, time budget); {} otherwise."""
    return _json(folder.parent / STUDIO / "jobs" / f"{folder.name}.json") or {}


def fit_folder(folder: Path) -> Path:
    """The folder holding the model's run files: the run itself, or an auto folder's final/."""
    return folder / "final" if kind_of(folder) == "auto" else folder


def list_runs(root: Path) -> list[RunRow]:
    if not root.is_dir():
        return []
    rows = [row(p) for p in root.iterdir() if is_run(p)]
    return sorted(rows, key=lambda r: r.started, reverse=True)


def row(folder: Path) -> RunRow:
    kind = kind_of(folder)
    status = status_of(folder, kind)
    out = RunRow(folder.name, kind, status, started=_made(folder))
    cfg = _config(fit_folder(folder)) or _job_config(folder)
    out.task, out.model = cfg.get("task", ""), str(cfg.get("model", {}).get("name", ""))
    out.strategy = str(cfg.get("strategy", {}).get("name", ""))
    summary = _json(fit_folder(folder) / "summary.json")
    if summary:
        _fill_metric(out, summary)
        out.report = (fit_folder(folder) / "report.html").is_file()
    if status == "failed":
        out.message = last_error(folder)
    return out


def _fill_metric(out: RunRow, summary: dict) -> None:
    test = summary.get("metrics", {}).get("test") or summary.get("metrics", {}).get("validation") or {}
    name = summary.get("best", {}).get("metric") or next(
        (k for k in ("accuracy", "micro_f1", "f1", "wer", "rmse", "macro_f1", "loss") if k in test), "")
    out.metric, out.value = name, test.get(name)
    out.ci = test.get("ci", {}).get(name)
    out.strategy = summary.get("strategy", out.strategy)
    out.model = summary.get("model", out.model)
    out.seconds = summary.get("timing", {}).get("total_seconds") or summary.get("timing", {}).get("train_seconds")


def status_of(folder: Path, kind: str) -> str:
    if not folder.exists():
        return "failed" if last_error(folder) else "starting"
    if lock_holder(folder) is not None or (kind == "auto" and lock_holder(folder / "final") is not None):
        return "running"
    done = (folder / "auto.json") if kind == "auto" else (folder / "summary.json")
    if done.is_file():
        return "finished"
    return "failed" if last_error(folder) else "stopped"


def last_error(folder: Path) -> str:
    """The error line the run's command printed (its studio log), '' if it printed none."""
    log = folder.parent / STUDIO / "logs" / f"{folder.name}.log"
    if not log.is_file():
        return ""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("error:", "Error", "Traceback")) or "Error:" in ln]
    return errors[-1][:300] if errors else ""


def curves(folder: Path) -> dict:
    """{"train": [[step, loss], ...], "validation": {metric: [[step, value], ...]}, "metric": main}."""
    train, validation = [], {}
    path = fit_folder(folder) / "metrics.jsonl"
    for record in _records(path):
        if record.get("split") == "train" and "loss" in record:
            train.append([record["step"], record["loss"]])
        elif record.get("split") == "validation":
            for key, value in record.items():
                if key not in ("step", "epoch", "split") and isinstance(value, (int, float)):
                    validation.setdefault(key, []).append([record["step"], value])
    main = next((k for k in ("accuracy", "micro_f1", "f1", "wer", "rmse", "macro_f1", "loss") if k in validation), None)
    return {"train": train, "validation": validation, "metric": main}


def progress(folder: Path) -> Progress:
    kind = kind_of(folder)
    out = Progress()
    if kind == "auto":
        state = _json(folder / "auto-state.json") or {}
        out.stages_done = [s for s in AUTO_STAGES if s in state.get("results", {})]
        out.stage = next((s for s in AUTO_STAGES if s not in out.stages_done), None)
    run = fit_folder(folder)
    last = next((r for r in reversed(_records(run / "metrics.jsonl")) if r.get("split") == "train"), None)
    cfg = _config(run)
    out.epochs = float(cfg.get("train", {}).get("epochs") or 0)
    out.elapsed = max(0.0, time.time() - _made(folder))
    if last:
        out.step, out.epoch = last["step"], float(last.get("epoch", 0))
        out.samples_per_second = last.get("samples_per_second")
        if out.epochs and 0 < out.epoch < out.epochs and kind == "fit":
            run_elapsed = max(1e-6, time.time() - _made(run))
            out.left = run_elapsed * (out.epochs - out.epoch) / out.epoch
    return out


def detail(folder: Path) -> dict:
    r = row(folder)
    return {"run": asdict(r), "progress": asdict(progress(folder)), "curves": curves(folder),
            "holder": lock_holder(folder) or lock_holder(folder / "final"),
            "resumable": r.status in ("stopped", "failed") and _config(fit_folder(folder)) != {}}


def stop(folder: Path) -> None:
    """Ctrl-C the run's process (SIGINT): it stops at once, the last checkpoint stays, `--resume` goes on."""
    holder = lock_holder(folder) or lock_holder(folder / "final")
    if not holder or not isinstance(holder.get("pid"), int):
        raise FtkitError(f"{folder.name} is not running")
    try:
        os.kill(holder["pid"], signal.SIGINT)
    except ProcessLookupError:
        pass


def delete(folder: Path) -> None:
    if status_of(folder, kind_of(folder)) in ("running", "starting"):
        raise FtkitError(f"{folder.name} is running; stop it first")
    shutil.rmtree(folder, ignore_errors=not folder.exists())
    for path in (f"logs/{folder.name}.log", f"jobs/{folder.name}.json", f"jobs/{folder.name}.yaml"):
        (folder.parent / STUDIO / path).unlink(missing_ok=True)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return max(1, math.ceil(n_train / max(1, batch_size)))


# ---------------------------------------------------------------- reading files

def _records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line being written
    return out


def _json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _config(run: Path) -> dict:
    try:
        return yaml.safe_load((run / "config.yaml").read_text()).get("config", {})
    except (OSError, AttributeError, yaml.YAMLError):
        return {}


def _job_config(folder: Path) -> dict:
    """The config the studio started an auto run with (auto folders have no config.yaml)."""
    try:
        return yaml.safe_load((folder.parent / STUDIO / "jobs" / f"{folder.name}.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _made(folder: Path) -> float:
    try:
        return min(p.stat().st_mtime for p in (folder / "config.yaml", folder / "auto-state.json", folder)
                   if p.exists())
    except ValueError:  # not made yet (a run the studio has just started)
        return time.time()
