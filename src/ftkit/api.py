"""The Python API, mirroring the CLI: ``ftkit.fit(...)``, ``ftkit.load(RUN_DIR)``."""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

from ftkit.config import KEYWORDS, MULTILABEL_OF, FitConfig, build_config
from ftkit.errors import ConfigError, FtkitError, RunDirError
from ftkit.failpoints import failpoint
from ftkit.io import atomic_path, write_json
from ftkit.runs.rundir import RunDir, resumed_config, versions
from ftkit.tasks import TASKS, get_task, load_builtin
from ftkit.version import __version__


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
    def meta(self) -> dict:
        """The model folder's ftkit.json: task, labels, base model, runtime ("onnx" for an ONNX export)."""
        if not (self.model_dir / "ftkit.json").is_file():
            raise RunDirError(f"{self.model_dir} holds no ftkit model (ftkit.json missing)")
        return json.loads((self.model_dir / "ftkit.json").read_text())

    @property
    def runtime(self) -> str:
        return self.meta.get("runtime", "torch")

    @cached_property
    def predictor(self):
        if self.runtime == "onnx":  # an ONNX export (`ftkit export --format onnx`): onnxruntime
            from ftkit.onnxrt.runtime import load_onnx

            return load_onnx(self.model_dir)
        return get_task(self.meta["task"]).predictor(self.model_dir)

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


def load(path: str | Path, *, runtime: str = "auto") -> Model:
    """A finished run folder, or a model folder written by `ftkit export`. `runtime`: "auto" (the
    folder's own: torch, or onnxruntime for an ONNX export), "torch" or "onnx" (refused, with the
    command to make one, when the folder is not what was asked for)."""
    folder = Path(path)
    if (folder / "ftkit.json").is_file() and not (folder / "summary.json").is_file():
        model = Model(folder)
    else:
        model = Run(path)
    if runtime not in RUNTIMES:
        raise ConfigError(f"--runtime {runtime}: one of {', '.join(RUNTIMES)}")
    if runtime != "auto" and model.runtime != runtime:
        how = (f"export one first: ftkit export {path} --format onnx --out DIR" if runtime == "onnx"
               else "serve the run folder (or an `ftkit export` without --format onnx)")
        held = "an ONNX" if model.runtime == "onnx" else "a torch"
        raise ConfigError(f"--runtime {runtime}: {path} holds {held} model; {how}")
    return model


RUNTIMES = ("auto", "torch", "onnx")


def export(run_dir: str | Path, out: str | Path, *, format: str = "safetensors", quantize: str | None = None,
           data: str | Path | None = None, overwrite: bool = False) -> Path:
    """A standalone model folder, written whole or not at all (a killed export leaves no `out` that
    looks done). format "safetensors": Hugging Face format where the model is one, LoRA merged in.
    format "onnx": model.onnx for onnxruntime, checked against torch on real inputs (`data`, default
    the run's test file) and, with quantize="int8", dynamically quantized with the accuracy before
    and after; both in OUT/export.json."""
    out = Path(out)
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"--format {format}: one of {', '.join(EXPORT_FORMATS)}")
    if quantize is not None and format != "onnx":
        raise ConfigError(f"--quantize {quantize}: quantization is for --format onnx")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise RunDirError(f"--out {out} is not empty; pass --overwrite to replace it")
    run = load(run_dir)
    if format == "onnx":
        from ftkit.onnxrt.export import export_onnx

        check, columns = _check_data(run, data)
        with atomic_path(out) as tmp:
            tmp.mkdir()
            export_onnx(run.model_dir, tmp, quantize=quantize, check_data=check, columns=columns)
            failpoint("export")
        return out
    predictor = run.predictor
    with atomic_path(out) as tmp:
        tmp.mkdir()
        predictor.export(tmp)
        failpoint("export")
    return out


EXPORT_FORMATS = ("safetensors", "onnx")


def _check_data(run: Model, data: str | Path | None) -> tuple[Path | None, dict]:
    """The labelled file an ONNX export is checked and scored on: `data`, else the run's test file
    (read with the run's columns); None for an exported folder or a test split cut from train."""
    if data is not None:
        if not Path(data).exists():
            raise ConfigError(f"--data {data}: no such file or folder")
        return Path(data), {}
    if not isinstance(run, Run):
        return None, {}
    saved = run.dir.saved_config().get("data", {})
    test = saved.get("test")
    return (Path(test), {}) if test and Path(test).exists() else (None, {})


def evaluate(run_dir: str | Path, data: str | Path, *, text_column: str | None = None,
             label_column: str | None = None, audio_column: str | None = None, out: str | Path | None = None) -> dict:
    """Score a finished run (or an exported model) on a labelled file (see `ftkit eval`); the
    columns default to the run's. Writes {"data", "metrics"} to `out`
    [RUN_DIR/evaluations/<file>.json] and returns it with "out" (where it went) added."""
    run = load(run_dir)
    examples = run.predictor.read(str(data), {"text": text_column, "label": label_column, "audio": audio_column})
    metrics, _ = run.predictor.evaluate(examples)
    target = Path(out) if out is not None else run.path / "evaluations" / f"{Path(data).stem}.json"
    result = {"data": str(data), "metrics": metrics}
    write_json(target, result)
    return {**result, "out": target}


eval = evaluate


def predict_file(run_dir: str | Path, data: str | Path | None = None, *, texts: list[str] | None = None,
                 text_column: str | None = None, out: str | Path | None = None, runtime: str = "auto"):
    """Predictions for a file (`data`) or for `texts` (texts, or image / audio paths), as a DataFrame
    (see `ftkit predict`); also written to `out` (.csv or .jsonl) when given."""
    if (data is None) == (not texts):
        raise FtkitError("give either --data PATH or one or more --text (images: --image, audio: --audio)")
    if out is not None and Path(out).suffix.lower() not in (".csv", ".jsonl"):
        raise FtkitError(f"--out {out}: use a .csv or .jsonl file")
    run = load(run_dir, runtime=runtime)  # a wrong folder is refused before pandas and torch load
    from ftkit.predict import predict_frame, write_predictions

    frame = predict_frame(run, None if data is None else str(data), list(texts) if texts else texts, text_column)
    if out is not None:
        write_predictions(frame, Path(out))
    return frame


def serve_app(model: str | Path, *, runtime: str = "auto", max_batch_size: int = 64, max_wait_ms: float = 5.0,
              max_inputs: int = 256, max_text_chars: int = 100_000, max_body_mb: float = 20.0):
    """The HTTP service of a run folder or exported model, as a FastAPI app (see `ftkit serve`):
    mount it in your own app, or run it with any ASGI server."""
    from ftkit.serving.app import ServeSettings, create_app

    settings = ServeSettings(max_batch_size, max_wait_ms, max_inputs, max_text_chars, max_body_mb)
    _check_serve(settings)
    # OpenMP threads that sleep when idle: spinning ones took the CPU the event loop needs (68 -> 86
    # requests/s at 64 clients on 2 cores); read when torch loads, so only if it has not yet
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    loaded = load(model, runtime=runtime)
    predictor = loaded.predictor  # loaded before the app answers /health
    meta = loaded.meta
    info = {"task": meta["task"], "labels": meta.get("labels", []), "base_model": meta.get("base_model"),
            "runtime": loaded.runtime, "model": str(loaded.path), "strategy": loaded.summary.get("strategy"),
            "metrics": loaded.metrics.get("test", {}), "ftkit_version": __version__}
    if len(meta.get("text_columns") or ()) > 1:  # a text pair: /predict takes a list or object per input
        info["text_columns"] = meta["text_columns"]
    return create_app(predictor, info, get_task(meta["task"]).input_kind, settings)


SERVE_ENV = "FTKIT_SERVE"  # the settings `ftkit serve --workers N` hands to each worker process


def serve_from_env():
    """The app of one `ftkit serve --workers N` worker process: serve_app with the settings in $FTKIT_SERVE."""
    spec = json.loads(os.environ[SERVE_ENV])
    return serve_app(spec.pop("model"), **spec)


def serve(model: str | Path, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, runtime: str = "auto",
          max_batch_size: int = 64, max_wait_ms: float = 5.0, max_inputs: int = 256, max_text_chars: int = 100_000,
          max_body_mb: float = 20.0, log_level: str = "info") -> None:
    """Serve a run folder or exported model over HTTP until stopped (see `ftkit serve`); binds to
    127.0.0.1 unless `host` says otherwise. With workers > 1 each worker process loads the model."""
    import uvicorn

    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port}: a TCP port, 1..65535 (0 is not allowed: the address must be known)")
    if workers < 1:
        raise ConfigError(f"--workers {workers}: at least 1")
    spec = {"model": str(model), "runtime": runtime, "max_batch_size": max_batch_size, "max_wait_ms": max_wait_ms,
            "max_inputs": max_inputs, "max_text_chars": max_text_chars, "max_body_mb": max_body_mb}
    if workers == 1:
        app = serve_app(**spec)
        uvicorn.run(app, host=host, port=port, log_level=log_level)
        return
    load(model, runtime=runtime)  # a wrong folder is refused here, once, not in every worker
    with tempfile.TemporaryDirectory(prefix="ftkit-metrics-") as metrics_dir:
        os.environ[SERVE_ENV] = json.dumps(spec)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # /metrics sums the workers
        uvicorn.run("ftkit.api:serve_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level)


def _check_serve(settings) -> None:
    for flag, value, low in (("--max-batch-size", settings.max_batch_size, 1), ("--max-inputs", settings.max_inputs, 1),
                             ("--max-text-chars", settings.max_text_chars, 1), ("--max-wait-ms", settings.max_wait_ms, 0),
                             ("--max-body-mb", settings.max_body_mb, 0.001)):
        if not value >= low:
            raise ConfigError(f"{flag} {value}: at least {low}")


def import_checkpoint(format: str, src: str | Path, out: str | Path, *, overwrite: bool = False) -> Path:
    """A checkpoint of another format as a Hugging Face folder (see `ftkit import`); format: ctranslate2."""
    if format != "ctranslate2":
        raise FtkitError(f"unknown checkpoint format {format!r}; known: ctranslate2")
    from ftkit.models.whisper_import import import_whisper

    if Path(out).exists() and not overwrite:
        raise FtkitError(f"{out} exists; pass --overwrite to replace it, or choose another folder")
    return import_whisper(Path(src), Path(out))


def models() -> list[dict]:
    """The named offline models (see `ftkit models`): name, installed, package, tasks, description."""
    from ftkit.models.zoo import ZOO, installed

    return [{"name": n, "installed": installed(m), "package": m.package, "tasks": list(m.tasks),
             "description": m.description} for n, m in ((n, ZOO.get(n)) for n in ZOO.names())]


def tasks() -> dict[str, str]:
    """The registered tasks: {name: description} (see `ftkit tasks`)."""
    load_builtin()
    return TASKS.describe()


def strategies(task: str = "text-classification") -> list[dict]:
    """The registered strategies with their default lr for `task` (see `ftkit strategies`)."""
    from ftkit.strategies import STRATEGIES, default_lr, get_strategy
    get_strategy("full")  # loads the built-in strategies
    kind = get_task(task)
    return [{"name": n, "default_lr": default_lr(n, kind), "description": text}
            for n, text in STRATEGIES.describe().items()]


def datasets(name: str | None = None, *, out: str | Path = "data", n_train: int | None = None,
             n_test: int | None = None) -> dict:
    """No name: the offline datasets, {name: description}. A name: write it as plain files under
    OUT/NAME/ (n_train / n_test: keep that many examples) -> {split: path} (see `ftkit datasets`)."""
    from ftkit.datasets import DATASETS

    if name is None:
        return DATASETS.describe()
    return dict(DATASETS.get(name)(Path(out) / name, n_train=n_train, n_test=n_test))


def env() -> dict[str, Any]:
    """What this machine offers (see `ftkit env`): versions, threads, CUDA, bf16, default precision."""
    import torch

    from ftkit.training.device import cpu_bf16_is_fast, pick_device, resolve_precision

    device = pick_device("auto")
    return {**versions(),
            "cpu threads": f"{torch.get_num_threads()} ({torch.backends.cpu.get_cpu_capability()})",
            "cuda": torch.cuda.get_device_name(0) if device.type == "cuda" else "none",
            "cpu bf16 fast": cpu_bf16_is_fast(),
            "default precision": f"{resolve_precision('auto', device)} on {device}"}


def report(path: str | Path) -> Path:
    """Write PATH/report.html (and a run's model card, model/README.md); returns the report's path.
    PATH: a finished run, or a compare / cv / seeds / tune / auto folder."""
    from ftkit.reporting import write_card, write_report

    out = write_report(path)
    write_card(path)  # None for outer-loop folders and runs saved without a model
    return out


def fit(config: str | Path | FitConfig | dict | None = None, *, overrides: dict | list | None = None,
        resume: bool = False, overwrite: bool = False, quiet: bool = False,
        baselines: list[str] | str | None = None, seeds: int = 1, command: list[str] | None = None,
        **options: Any) -> Run | dict:
    """Fine-tune and evaluate; returns the finished run.

    ``config`` is a YAML path, a dict or a FitConfig; keyword options use the CLI names
    (``model=``, ``train=``, ``lr=``, ...); ``overrides`` takes dotted keys like ``--set``.
    ``baselines=["scratch", "probe"]`` then runs those baselines (see ``--baseline``). ``seeds=N``
    (N > 1, no baselines) repeats the fit with seeds seed..seed+N-1 and returns seeds.json instead
    (see ``ftkit.seeds``). Bad input is refused before torch loads. ``command``: what the run
    folder records as its command line.
    """
    from ftkit.runs.precheck import precheck

    cfg = make_config(config, options, overrides)
    command = command or ["ftkit.fit(...)"]
    if baselines:
        from ftkit.runs.baselines import check_names, fit_with_baselines

        check_names(baselines)
        precheck(cfg, resume=resume, overwrite=overwrite)  # the fine-tuned run's input, before torch loads
        return Run(fit_with_baselines(cfg, baselines, seeds=seeds, resume=resume, overwrite=overwrite, quiet=quiet,
                                      command=command))
    if seeds != 1:  # the first seed's run checks the data before torch loads (runs/repeat.py)
        return _seeds(cfg, seeds, None, resume=resume, overwrite=overwrite, quiet=quiet)
    precheck(cfg, resume=resume, overwrite=overwrite)  # bad input is refused before torch loads (seconds)
    from ftkit.runs.fit import fit_run

    if resume:
        cfg = resumed_config(cfg)
    return Run(fit_run(cfg, resume=resume, overwrite=overwrite, quiet=quiet, command=command))


def check(config: str | Path | FitConfig | dict | None = None, *, overrides: dict | list | None = None,
          overwrite: bool = False, **options: Any) -> FitConfig:
    """What `ftkit fit` would refuse (config, data, --out), without training or loading torch:
    the resolved config, or the same one-line error fit would give."""
    from ftkit.runs.precheck import precheck

    cfg = make_config(config, options, overrides)
    precheck(cfg, resume=False, overwrite=overwrite)
    return cfg


def studio(runs: str | Path = "runs", *, host: str = "127.0.0.1", port: int = 8765, max_upload_mb: float = 200.0,
           log_level: str = "info") -> None:
    """The local web studio (see `ftkit studio`) until stopped: start, watch, compare and try runs
    under `runs`. It drives this module's functions (check, doctor, advise, load, models) and starts
    fit / auto as `ftkit` processes, so every run is an ordinary run folder."""
    import sys

    import uvicorn

    from ftkit.webstudio.app import create_studio

    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port}: a TCP port, 1..65535")
    app = create_studio(Path(runs), sys.modules[__name__], max_upload_mb=max_upload_mb)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def cv(config: str | Path | FitConfig | dict | None = None, *, folds: int = 5, out: str | Path = "runs/cv",
       workers_per_trial: int | None = None, overrides: dict | list | None = None, resume: bool = False,
       overwrite: bool = False, quiet: bool = False, **options: Any) -> dict:
    """Stratified k-fold cross-validation over the training data (see `ftkit cv`); returns cv.json.
    ``workers_per_trial`` N: each fold trains on N Ray Train workers (distributed.workers)."""
    from ftkit.runs.repeat import cross_validate

    cfg = make_config(config, options, overrides)
    return cross_validate(cfg, folds, Path(out), resume=resume, overwrite=overwrite, quiet=quiet,
                          workers=workers_per_trial)


def tune(config: str | Path | FitConfig | dict | None = None, *, out: str | Path = "runs/tune",
         trials: int | None = None, time_budget: str | float | None = None, resume: bool = False,
         sampler: str = "tpe", pruner: str = "median", executor: str = "local", address: str | None = None,
         trial_cpus: int = 1, workers_per_trial: int | None = None, refit: bool = True, refit_on_all: bool = False,
         space: dict | None = None, search_strategy: bool | None = None, points: list[dict] | None = None,
         overrides: dict | list | None = None, quiet: bool = False, **options: Any) -> dict:
    """Tune hyperparameters with Optuna (see `ftkit tune`) and refit the best; returns tune.json.

    ``space`` ({dotted key: {low, high, log} | {choices: [...]}}) replaces the default search space,
    as does a ``tune: space:`` section in a YAML config; ``points`` are configurations tried first.
    ``workers_per_trial`` N (``executor="ray"``): each trial and the refit train on N Ray Train workers."""
    from ftkit.hpo.space import split_config
    from ftkit.hpo.tune import tune as run_tune
    from ftkit.runs.precheck import precheck_data

    config, spec = split_config(config)
    cfg = make_config(config, options, overrides)
    precheck_data(cfg, resume=resume)  # bad data is refused before optuna and torch load
    if search_strategy is None and options.get("strategy"):
        search_strategy = False  # a strategy given is kept
    return run_tune(cfg, Path(out), trials=trials, time_budget=time_budget, resume=resume, sampler=sampler,
                    pruner=pruner, executor=executor, address=address, trial_cpus=trial_cpus,
                    workers_per_trial=workers_per_trial, refit=refit,
                    refit_on_all=refit_on_all, space=space if space is not None else spec,
                    search_strategy=search_strategy, points=points, quiet=quiet)


def seeds(config: str | Path | FitConfig | dict | None = None, *, n: int = 3, out: str | Path | None = None,
          overrides: dict | list | None = None, resume: bool = False, overwrite: bool = False, quiet: bool = False,
          **options: Any) -> dict:
    """The same fit with n seeds on the same splits (see `ftkit fit --seeds`); returns seeds.json."""
    return _seeds(make_config(config, options, overrides), n, out, resume=resume, overwrite=overwrite, quiet=quiet)


def _seeds(cfg: FitConfig, n: int, out, *, resume: bool, overwrite: bool, quiet: bool) -> dict:
    from ftkit.runs.repeat import repeat_seeds

    if out is None and cfg.out is None:
        from ftkit.runs.fit import default_out
        out = default_out(cfg)
    return repeat_seeds(cfg, n, Path(out or cfg.out), resume=resume, overwrite=overwrite, quiet=quiet)


def compare(config: str | Path | FitConfig | dict | None = None, *, strategies: list[str] | str,
            out: str | Path = "runs/compare", overrides: dict | list | None = None, resume: bool = False,
            overwrite: bool = False, quiet: bool = False, **options: Any):
    """Several strategies with the same data, budget and seed (see `ftkit compare`): one run per
    strategy in `out`, plus comparison.csv/.png; returns the comparison table (a DataFrame).
    `strategies`: names or variants with their own settings, e.g. "full,lora,full[train.l2sp=0.01]"."""
    from ftkit.runs.compare import compare as run_compare
    from ftkit.runs.compare import precheck_compare, split_variants

    cfg = make_config(config, options, overrides)
    names = split_variants(strategies) if isinstance(strategies, str) else list(strategies)
    precheck_compare(cfg, names, Path(out), resume=resume, overwrite=overwrite)  # each strategy trains in a new process
    return run_compare(cfg, names, Path(out), overwrite=overwrite, resume=resume, quiet=quiet)


def doctor(config: str | Path | FitConfig | dict | None = None, *, out: str | Path | None = None,
           label_noise: bool = True, near_threshold: float = 0.8, overrides: dict | list | None = None,
           **options: Any) -> dict:
    """Check the data (see `ftkit doctor`); returns the report ({"checks": [...], "summary": {...}}),
    also written to `out` when given."""
    from ftkit.data.doctor import Options, diagnose, write

    cfg = make_config(config, options, overrides)
    report = diagnose(cfg, get_task(cfg.task), Options(near_threshold=near_threshold, label_noise=label_noise))
    if out is not None:
        write(report, out)
    return report.to_dict()


def rank(config: str | Path | FitConfig | dict | None = None, *, models: list[str] | str, confirm_top: int = 0,
         out: str | Path | None = None, overrides: dict | list | None = None, confirm_epochs: float = 1.0,
         runs: str | Path | None = None, quiet: bool = False, **options: Any) -> dict:
    """Rank candidate models on the training data (see `ftkit rank`): LogME, kNN and linear-probe
    accuracy of frozen features, a combined rank, and with ``confirm_top=K`` short fine-tunes of
    the top K under successive halving; returns the report (rank.json), also written to `out`."""
    from ftkit.selection.rank import rank_models

    cfg = make_config(config, options, overrides)
    return rank_models(cfg, list(_split(models)), confirm_top=confirm_top, confirm_epochs=confirm_epochs, runs=runs,
                       out=out, quiet=quiet)


def advise(config: str | Path | FitConfig | dict | None = None, *, models: list[str] | str | None = None,
           strategies: list[str] | str | None = None, budget: str | float | None = None,
           target_metric: float | None = None, out: str | Path | None = None, overrides: dict | list | None = None,
           isolate: bool = True, **options: Any) -> dict:
    """Before any compute is spent (see `ftkit advise`): data and model facts, a short profiling
    pass per strategy -> estimated time and memory of a fit, and a recommendation with reasons
    (result["recommendation"]). `budget`: seconds or "90s" / "30m" / "1.5h". Written to `out`."""
    from ftkit.advisor.run import advise_run, parse_budget
    from ftkit.runs.precheck import precheck_data

    cfg = make_config(config, options, overrides)
    precheck_data(cfg)  # before the strategies are profiled (each in a process that imports torch)
    result = advise_run(cfg, models=_split(models), strategies=_split(strategies), budget=parse_budget(budget),
                        target_metric=target_metric, isolate=isolate, fit_flags=_fit_flags(config, options, overrides))
    if out is not None:
        write_json(out, result)
    return result


def _fit_flags(config, options: dict, overrides) -> list[str]:
    """The `ftkit fit` arguments equivalent to these API arguments (for the advised command)."""
    flags = [str(config)] if isinstance(config, (str, Path)) else []
    for key, value in options.items():
        if value is not None:
            flags += [f"--{key.replace('_', '-')}", str(value)]
    items = overrides.items() if isinstance(overrides, dict) else [tuple(o.split("=", 1)) for o in overrides or []]
    for key, value in items:
        flags += ["--set", f"{key}={value}"]
    return flags


def auto(config: str | Path | FitConfig | dict | None = None, *, time_budget: str | float, out: str | Path = "runs/auto",
         models: list[str] | None = None, overwrite: bool = False, resume: bool = False, executor: str = "local",
         address: str | None = None, overrides: dict | list | None = None, quiet: bool = False,
         since_process_start: bool = False, **options: Any) -> dict:
    """doctor -> rank -> advise -> tune -> final fit, within `time_budget` (seconds, or "30m");
    returns auto.json; `ftkit.load(report["final_run"])` is the model (see `ftkit auto`).
    `resume`: continue a killed auto in `out` (finished stages are kept). `models`: a list or a
    comma string. `since_process_start`: the budget also covers this process's start-up (the CLI's)."""
    from ftkit.hpo.tune import parse_duration
    from ftkit.runs.auto import auto_run, check_budget, process_start

    started = process_start() if since_process_start else None
    cfg = make_config(config, options, overrides)
    return auto_run(cfg, Path(out), time_budget=check_budget(parse_duration(time_budget)), models=_split(models) or None,
                    overwrite=overwrite, resume=resume, executor=executor, address=address,
                    strategy_given=True if options.get("strategy") else None, started=started, quiet=quiet)


def _split(items: list[str] | str | None) -> list[str] | None:
    """"a, b" -> ["a", "b"]: a comma string (the CLI's) or a list."""
    return [x.strip() for x in items.split(",") if x.strip()] if isinstance(items, str) else items


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
        return with_label_lists(build_config(None, flags, sets, base=config, values=values))
    return with_label_lists(build_config(config, flags, sets, values=values))


def with_label_lists(cfg: FitConfig) -> FitConfig:
    """A classification run whose label column holds lists (JSON list cells) is multi-label, as
    one with --label-sep is: the config names the multi-label sibling task."""
    from ftkit.data.label_sets import holds_label_lists  # pandas: not loaded for `ftkit --help`

    d = cfg.data
    sibling = MULTILABEL_OF.get(cfg.task)
    if sibling is None or d.label_sep is not None or not d.train or Path(d.train).is_dir():
        return cfg
    if not holds_label_lists(d.train, d.label_column):
        return cfg
    return FitConfig.model_validate({**cfg.model_dump(mode="json", exclude_unset=True), "task": sibling})
