"""One run folder: config, logs, checkpoints, model, predictions, summary.

    RUN_DIR/config.yaml       resolved config + command line + versions
    RUN_DIR/splits.json       how train/validation/test were made (sources, rows, seed)
    RUN_DIR/metrics.jsonl     one JSON object per logged step / evaluation
    RUN_DIR/checkpoints/      resumable state (training/checkpoint.py)
    RUN_DIR/model/            the fine-tuned model, Hugging Face format, safetensors
    RUN_DIR/predictions.csv   test predictions with probabilities
    RUN_DIR/summary.json      written last: its presence means the run finished
    RUN_DIR/tracking.json     --tracking mlflow: the MLflow run it is logged to (ftkit/tracking.py)
"""
from __future__ import annotations

import json
import logging
import platform
import shutil
from datetime import datetime, timezone
from pathlib import Path

import yaml

from ftkit.config import FitConfig, validate
from ftkit.errors import ConfigError, RunDirError
from ftkit.io import write_json, write_text
from ftkit.locks import LOCK_NAME, refuse_if_locked
from ftkit.version import __version__

log = logging.getLogger(__name__)

STARTED_FILES = ("config.yaml", "splits.json", "metrics.jsonl", ".config.yaml.tmp", ".splits.json.tmp")


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.splits = self.path / "splits.json"
        self.metrics = self.path / "metrics.jsonl"
        self.summary = self.path / "summary.json"
        self.model = self.path / "model"
        self.predictions = self.path / "predictions.csv"
        self.checkpoints = self.path / "checkpoints"
        self.best_weights = self.checkpoints / "best.safetensors"
        self.on_log = None  # also called with each record (experiment tracking mirrors them live)

    def finished(self) -> bool:
        return self.summary.is_file()

    def check(self, resume: bool, overwrite: bool) -> bool:
        """Refuse to clobber or mix runs; called before anything is written. -> whether to continue
        the run in the folder: `resume` on a run killed before it began (no config.yaml and
        splits.json yet: during the data checks) starts it instead."""
        p = self.path
        if p.exists() and not p.is_dir():
            raise RunDirError(f"--out {p} is a file; choose a folder")
        refuse_if_locked(p)
        if resume:
            if self.finished():
                raise RunDirError(f"{p} holds a finished run (summary.json); nothing to resume")
            if self.began():
                return True
            if not p.exists() or self._only(STARTED_FILES):
                log.info("%s: the run was stopped before it began; starting it", p)
                return False
            raise RunDirError(f"nothing to resume in {p}: no config.yaml (was the run started there?)")
        if overwrite or not p.exists() or self._only(()):
            return False
        if self.finished():
            raise RunDirError(f"{p} already holds a finished run; pass --overwrite to replace it, "
                              "or choose another --out")
        if self.config.is_file():
            raise RunDirError(f"{p} holds an unfinished run; pass --resume to continue it, "
                              "or --overwrite to start over")
        raise RunDirError(f"{p} is not empty and is not an ftkit run folder; choose another --out")

    def began(self) -> bool:
        """config.yaml and splits.json are written: `--resume` continues the run."""
        return self.config.is_file() and self.splits.is_file()

    def _only(self, names) -> bool:
        """The folder holds nothing but its lock file and `names`."""
        return all(child.name in (LOCK_NAME, *names) for child in self.path.iterdir())

    def start(self, config: dict, command: list[str], split_record: dict, overwrite: bool) -> None:
        """config.yaml, splits.json, an empty metrics.jsonl; what was there goes (the lock stays)."""
        self.path.mkdir(parents=True, exist_ok=True)
        for child in self.path.iterdir():
            if child.name != LOCK_NAME:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        doc = {"config": config, "command": command, "versions": versions(),
               "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        write_text(self.config, yaml.safe_dump(doc, sort_keys=False))
        write_json(self.splits, split_record)
        self.metrics.touch()

    def saved_config(self) -> dict:
        return yaml.safe_load(self.config.read_text(encoding="utf-8"))["config"]

    def log(self, record: dict) -> None:
        with open(self.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.on_log is not None:
            self.on_log(record)

    def truncate_metrics(self, step: int) -> None:
        """Drop records a killed run wrote after its last checkpoint (they will be redone)."""
        if not self.metrics.is_file():
            return
        keep = [line for line in self.metrics.read_text(encoding="utf-8").splitlines()
                if line.strip() and _step_of(line) <= step]
        write_text(self.metrics, "".join(line + "\n" for line in keep))

    def read_summary(self) -> dict:
        if not self.finished():
            raise RunDirError(f"{self.path} has no summary.json: not a finished ftkit run")
        return json.loads(self.summary.read_text(encoding="utf-8"))

    def write_summary(self, summary: dict) -> None:
        write_json(self.summary, summary)


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return 1 << 62  # a torn last line from a kill: drop it


def versions() -> dict:
    import torch
    import transformers

    return {"ftkit": __version__, "torch": str(torch.__version__), "transformers": transformers.__version__,
            "python": platform.python_version()}


def resumed_config(cfg: FitConfig) -> FitConfig:
    """--resume continues with the saved config; other settings must agree with it."""
    if not cfg.out:
        raise ConfigError("--resume needs --out RUN_DIR (the folder of the run to continue)")
    run = RunDir(cfg.out)
    if not run.finished() and not run.began():
        if cfg.data.train:  # killed before it began (the data checks): `fit` starts it as given
            return cfg
        raise RunDirError(f"nothing to resume in {cfg.out}: no config.yaml (the run did not begin there); "
                          "give its settings again (config file, --train, --model) with --resume to start it")
    saved = validate({**run.saved_config(), "out": cfg.out})
    given, default = cfg.model_dump(mode="json"), FitConfig(out=cfg.out).model_dump(mode="json")
    kept = saved.model_dump(mode="json")
    clash = [k for k in _leaves(given) if _get(given, k) not in (_get(default, k), _get(kept, k))]
    if clash:
        raise ConfigError(f"--resume continues {cfg.out} with its saved settings; these differ: "
                          f"{', '.join(clash)} (drop them, or start a new run)")
    return saved


def _leaves(tree: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in tree.items():
        out += _leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
    return out


def _get(tree: dict, dotted: str):
    for k in dotted.split("."):
        if not isinstance(tree, dict) or k not in tree:
            return None
        tree = tree[k]
    return tree
