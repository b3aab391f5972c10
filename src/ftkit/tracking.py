"""Experiment tracking: a run's config, per-step metrics, summary and folder in an MLflow store.

The run folder stays the record of a run; a tracker mirrors it into a store where many runs
can be browsed side by side (`mlflow ui`). `fit_run` drives it:

    open_tracker(cfg)        before anything is written: a bad --tracking-uri fails here
    tracker.start(...)       after the run folder exists: the MLflow run, params and tags;
                             from then on every metrics.jsonl record is logged as it is written
    tracker.finish(...)      after summary.json: final metrics, the run folder as artifacts
    tracker.fail(err)        an exception ended the run: status FAILED (KILLED for Ctrl-C)

    RUN/tracking.json        where the run was logged, so --resume continues the same MLflow run

Outer loops (cv, seeds, compare, tune, auto, rank) call `fit_run` with their own `command`;
it becomes the run's `ftkit.kind` tag, and the outer folder its `ftkit.parent` tag.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Protocol

from ftkit.config import FitConfig, TrackingConfig, flatten, to_dict
from ftkit.errors import ConfigError
from ftkit.io import write_json
from ftkit.locks import LOCK_NAME
from ftkit.version import __version__

log = logging.getLogger(__name__)

INSTALL_HINT = "--tracking mlflow needs MLflow: pip install 'ftkit[tracking]'"
DEFAULT_FOLDER = "mlruns"  # in the working folder: `mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db`
STATE_FILE = "tracking.json"
# Resumable state (deleted when the run ends) and the folder lock (released then): never artifacts.
SKIPPED = {"checkpoints", LOCK_NAME}
# fit_run's `command` from each outer loop -> the kind of run it is
OUTER_KINDS = {("tune", "(trial)"): "tune-trial", ("tune", "(refit)"): "tune-refit",
               ("auto", "(final)"): "auto-final", ("rank", "--confirm-top"): "rank-confirm",
               ("compare",): "compare"}


class Tracker(Protocol):
    def start(self, cfg: FitConfig, run_dir: Path, command: list[str], resume: bool) -> None: ...
    def log_record(self, record: dict) -> None: ...
    def finish(self, run_dir: Path, summary: dict) -> None: ...
    def fail(self, err: BaseException) -> None: ...


class NoTracker:
    """tracking.backend=none: every call does nothing."""

    def start(self, cfg: FitConfig, run_dir: Path, command: list[str], resume: bool) -> None:
        pass

    def log_record(self, record: dict) -> None:
        pass

    def finish(self, run_dir: Path, summary: dict) -> None:
        pass

    def fail(self, err: BaseException) -> None:
        pass


def open_tracker(cfg: FitConfig) -> Tracker:
    if cfg.tracking.backend == "mlflow":
        return MlflowTracker(cfg.tracking)
    return NoTracker()


def default_uri(uri: str | None) -> tuple[str, str | None]:
    """-> (tracking URI, artifact location for a new experiment). No URI: a SQLite store in
    ./mlruns. A SQLite store keeps its artifacts beside the database (MLflow's own default,
    ./mlartifacts of whatever folder the run started in, scatters them)."""
    if uri is None:
        folder = Path.cwd() / DEFAULT_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
    if uri.startswith("sqlite:///"):
        database = Path(uri[len("sqlite:///"):])
        return uri, (database.parent / "artifacts").resolve().as_uri()
    return uri, None


class MlflowTracker:
    """Logs through `MlflowClient` (not the fluent `mlflow.start_run`): no process-wide active
    run, so nested outer loops and library users' own MLflow runs are left alone."""

    def __init__(self, settings: TrackingConfig):
        mlflow = _import_mlflow()
        self.settings = settings
        self.uri, self.artifact_location = default_uri(settings.uri)
        self.run_id: str | None = None
        self._warned = False
        try:  # connects (and creates a new SQLite store): a bad URI fails before any training
            self.client = mlflow.tracking.MlflowClient(tracking_uri=self.uri)
            self.experiment_id = self._experiment(settings.experiment)
        except Exception as err:  # noqa: BLE001 - MLflow, SQLAlchemy and HTTP errors all mean the same here
            raise ConfigError(f"--tracking-uri {self.uri}: cannot open the MLflow store "
                              f"({_one_line(err)})") from None

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=self.artifact_location)
        except Exception:
            # Parallel trials may race to create it: the winner's experiment is as good.
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def start(self, cfg: FitConfig, run_dir: Path, command: list[str], resume: bool) -> None:
        run_dir = Path(run_dir).resolve()
        self.run_id = self._resumed_run(run_dir) if resume else None
        if self.run_id is None:
            tags = run_tags(cfg, run_dir, command)
            name = cfg.tracking.run_name or _run_name(run_dir, tags)
            self.run_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
            self._log_params(flat_params({**to_dict(cfg), "out": str(run_dir)}))
        write_json(run_dir / STATE_FILE, {"backend": "mlflow", "uri": self.uri, "experiment_id": self.experiment_id,
                                          "run_id": self.run_id})
        log.info("tracking: MLflow run %s in %s (experiment %r)", self.run_id, self.uri, self.settings.experiment)

    def _resumed_run(self, run_dir: Path) -> str | None:
        """The MLflow run a killed run was logging to, marked running again; None: start a new one."""
        state = run_dir / STATE_FILE
        if not state.is_file():
            return None
        saved = json.loads(state.read_text(encoding="utf-8"))
        if saved.get("uri") != self.uri:
            log.warning("tracking: %s was logged to %s; logging the resumed run to %s as a new MLflow run",
                        run_dir, saved.get("uri"), self.uri)
            return None
        try:
            self.client.update_run(saved["run_id"], status="RUNNING")
        except Exception as err:  # noqa: BLE001 - e.g. the run was deleted from the store
            log.warning("tracking: cannot continue MLflow run %s (%s); starting a new one", saved["run_id"],
                        _one_line(err))
            return None
        return saved["run_id"]

    def _log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow's batch limit
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log_record(self, record: dict) -> None:
        """One metrics.jsonl record: {"step", "epoch", "split", metric: value, ...} ->
        `split/metric` at that step (train/loss, validation/accuracy, ...)."""
        if self.run_id is None:
            return
        split = record.get("split", "train")
        values = {f"{split}/{k}": v for k, v in record.items() if k not in ("step", "split", "epoch")}
        if "epoch" in record:
            values["epoch"] = record["epoch"]
        try:
            self._log_metrics(values, int(record.get("step", 0)))
        except Exception as err:  # noqa: BLE001
            # The store is a mirror of metrics.jsonl: a store that went away must not end hours of
            # training. Warn once; finish() tries again and reports a failure there.
            if not self._warned:
                log.warning("tracking: could not log metrics to %s (%s); training goes on", self.uri,
                            _one_line(err))
                self._warned = True

    def _log_metrics(self, values: dict, step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items() if _is_number(v)]
        for i in range(0, len(metrics), 1000):  # MLflow's batch limit
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def finish(self, run_dir: Path, summary: dict) -> None:
        """Final metrics (held-out scores of the kept model, timing, size) and the run folder."""
        if self.run_id is None:
            return
        self._log_metrics(final_metrics(summary), int(summary.get("timing", {}).get("steps", 0)))
        run_dir = Path(run_dir)
        for item in sorted(run_dir.iterdir()):
            if item.name in SKIPPED:
                continue
            if item.is_dir():
                self.client.log_artifacts(self.run_id, str(item), artifact_path=item.name)
            else:
                self.client.log_artifact(self.run_id, str(item))
        self.client.set_terminated(self.run_id, status="FINISHED")

    def fail(self, err: BaseException) -> None:
        if self.run_id is None:  # refused before the run started: nothing was logged
            return
        status = "KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED"
        try:
            self.client.set_tag(self.run_id, "ftkit.error", _one_line(err)[:5000])
            self.client.set_terminated(self.run_id, status=status)
        except Exception as store_err:  # noqa: BLE001 - the run's own error is the one to report
            log.warning("tracking: could not mark MLflow run %s %s (%s)", self.run_id, status, _one_line(store_err))


def run_tags(cfg: FitConfig, run_dir: Path, command: list[str]) -> dict[str, str]:
    kind = run_kind(command)
    tags = {"ftkit.version": __version__, "ftkit.task": cfg.task, "ftkit.model": cfg.model.name,
            "ftkit.strategy": cfg.strategy.name, "ftkit.init": cfg.model.init, "ftkit.run_dir": str(run_dir),
            "ftkit.command": " ".join(command)[:5000], "ftkit.kind": kind}
    if kind != "fit":
        tags["ftkit.parent"] = str(run_dir.parent.parent if kind == "baseline" else run_dir.parent)
    return tags


def run_kind(command: list[str]) -> str:
    """fit, or which outer loop called fit_run (cv-fold, seed, compare, tune-trial, ...)."""
    if len(command) == 4 and command[:3] == ["ftkit", "fit", "--baseline"]:
        return "baseline"  # runs/baselines.py: RUN/baselines/<name> of a fine-tuned RUN
    if len(command) < 2 or command[0] != "ftkit" or command[1] == "fit":
        return "fit"
    for words, kind in OUTER_KINDS.items():
        if tuple(command[1:1 + len(words)]) == words:
            return kind
    if command[1].startswith("fold-"):
        return "cv-fold"
    if command[1].startswith("seed-"):
        return "seed"
    return "fit"


def _run_name(run_dir: Path, tags: dict) -> str:
    # Outer loops name their runs fold-0, trial-0003, ...: the outer folder tells them apart.
    return f"{run_dir.parent.name}/{run_dir.name}" if "ftkit.parent" in tags else run_dir.name


def flat_params(tree: dict) -> dict[str, str]:
    """The resolved config as MLflow params: dotted keys, values as text within MLflow's limit."""
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    return {key: (value if isinstance(value, str) else json.dumps(value))[:MAX_PARAM_VAL_LENGTH]
            for key, value in flatten(tree).items()}


def final_metrics(summary: dict) -> dict[str, float]:
    """`final/<split>/<metric>` for the held-out scores of the kept model (the per-step
    `validation/...` curve stays the training's own), plus timing and parameter counts."""
    values = {f"final/{split}/{k}": v for split, scores in summary.get("metrics", {}).items()
              for k, v in scores.items() if _is_number(v)}
    values.update({f"timing/{k}": v for k, v in summary.get("timing", {}).items() if _is_number(v)})
    values.update({f"params/{k}": v for k, v in summary.get("params", {}).items() if _is_number(v)})
    best = summary.get("best", {})
    if _is_number(best.get("value")):
        values[f"best/validation/{best['metric']}"] = best["value"]
    if _is_number(summary.get("peak_memory_mb")):
        values["peak_memory_mb"] = summary["peak_memory_mb"]
    return values


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _import_mlflow():
    try:
        import mlflow
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    # MLflow and the SQLite store's migrations (alembic) log at INFO: keep the CLI's output ours.
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow
