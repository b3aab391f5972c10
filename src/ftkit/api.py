"""The Python API, mirroring the CLI: ``ftkit.fit(...)``, ``ftkit.load(RUN_DIR)``."""
from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

from ftkit.config import KEYWORDS, FitConfig, build_config, validate
from ftkit.errors import ConfigError, RunDirError
from ftkit.runs.rundir import RunDir


class Model:
    """An exported model folder (`ftkit export`): predicts and scores like a run."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.model_dir = self.path
        self.summary: dict = {"metrics": {}}

    @property
    def metrics(self) -> dict:
        return self.summary["metrics"]

    @cached_property
    def predictor(self):
        from ftkit.tasks import get_task

        if not (self.model_dir / "ftkit.json").is_file():
            raise RunDirError(f"{self.model_dir} holds no ftkit model (ftkit.json missing)")
        task = json.loads((self.model_dir / "ftkit.json").read_text())["task"]
        return get_task(task).predictor(self.model_dir)

    def predict(self, inputs: Iterable) -> list[dict]:
        """One dict per input, e.g. {"label", "score", "probabilities": {label: p}} for text."""
        return self.predictor.predict(list(inputs))

    def __repr__(self) -> str:
        return f"Model({str(self.path)!r})"


class Run(Model):
    """A finished run folder: its summary, metrics and a predictor for new inputs."""

    def __init__(self, path: str | Path):
        self.dir = RunDir(path)
        self.path = self.dir.path
        self.model_dir = self.dir.model
        self.summary = self.dir.read_summary()

    def __repr__(self) -> str:
        test = self.metrics.get("test", {})
        brief = ", ".join(f"{k}={test[k]:.4f}" for k in ("accuracy", "macro_f1") if k in test)
        return f"Run({str(self.path)!r}{', ' + brief if brief else ''})"


def load(path: str | Path) -> Model:
    """A finished run folder, or a model folder written by `ftkit export`."""
    folder = Path(path)
    if (folder / "ftkit.json").is_file() and not (folder / "summary.json").is_file():
        return Model(folder)
    return Run(path)


def fit(config: str | Path | FitConfig | dict | None = None, *, overrides: dict | list | None = None,
        resume: bool = False, overwrite: bool = False, quiet: bool = False, **options: Any) -> Run:
    """Fine-tune and evaluate; returns the finished run.

    ``config`` is a YAML path, a dict or a FitConfig; keyword options use the CLI names
    (``model=``, ``train=``, ``lr=``, ...); ``overrides`` takes dotted keys like ``--set``.
    """
    from ftkit.runs.fit import fit_run

    cfg = make_config(config, options, overrides)
    if resume:
        cfg = resumed_config(cfg)
    return Run(fit_run(cfg, resume=resume, overwrite=overwrite, quiet=quiet,
                       command=["ftkit.fit(...)"]))


def cv(config: str | Path | FitConfig | dict | None = None, *, folds: int = 5, out: str | Path = "runs/cv",
       overrides: dict | list | None = None, resume: bool = False, overwrite: bool = False, quiet: bool = False,
       **options: Any) -> dict:
    """Stratified k-fold cross-validation over the training data (see `ftkit cv`); returns cv.json."""
    from ftkit.runs.repeat import cross_validate

    cfg = make_config(config, options, overrides)
    return cross_validate(cfg, folds, Path(out), resume=resume, overwrite=overwrite, quiet=quiet)


def seeds(config: str | Path | FitConfig | dict | None = None, *, n: int = 3, out: str | Path | None = None,
          overrides: dict | list | None = None, resume: bool = False, overwrite: bool = False, quiet: bool = False,
          **options: Any) -> dict:
    """The same fit with n seeds on the same splits (see `ftkit fit --seeds`); returns seeds.json."""
    from ftkit.runs.fit import default_out
    from ftkit.runs.repeat import repeat_seeds

    cfg = make_config(config, options, overrides)
    folder = Path(out or cfg.out or default_out(cfg))
    return repeat_seeds(cfg, n, folder, resume=resume, overwrite=overwrite, quiet=quiet)


def doctor(config: str | Path | FitConfig | dict | None = None, *, out: str | Path | None = None,
           label_noise: bool = True, near_threshold: float = 0.8, overrides: dict | list | None = None,
           **options: Any) -> dict:
    """Check the data (see `ftkit doctor`); returns the report ({"checks": [...], "summary": {...}}),
    also written to `out` when given."""
    from ftkit.data.doctor import Options, diagnose, write

    cfg = make_config(config, options, overrides)
    report = diagnose(cfg, Options(near_threshold=near_threshold, label_noise=label_noise))
    if out is not None:
        write(report, out)
    return report.to_dict()


def make_config(config, options: dict, overrides=None) -> FitConfig:
    unknown = sorted(set(options) - set(KEYWORDS))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(KEYWORDS)}")
    flags = {KEYWORDS[k]: v for k, v in options.items()}
    # overrides: a dict of dotted keys with Python values (None included), or "key=value" strings
    values = overrides if isinstance(overrides, dict) else {}
    sets = [] if isinstance(overrides, dict) else list(overrides or [])
    if isinstance(config, FitConfig):
        config = config.model_dump(mode="json")
    if isinstance(config, dict):
        return build_config(None, flags, sets, base=config, values=values)
    return build_config(config, flags, sets, values=values)


def resumed_config(cfg: FitConfig) -> FitConfig:
    """--resume continues with the saved config; other settings must agree with it."""
    if not cfg.out:
        raise ConfigError("--resume needs --out RUN_DIR (the folder of the run to continue)")
    run = RunDir(cfg.out)
    run.check(resume=True, overwrite=False)
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
