"""Command line: parse -> config -> call the API -> print. No logic of its own.

Errors a user can cause print one line and exit 2; ``--debug`` anywhere shows the traceback.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ftkit.errors import FtkitError
from ftkit.io import atomic_path

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fine-tune pretrained models on your own data, the right way by default.")

# Options shared by `fit` and `compare` (defined once so both commands read the same).
CONFIG_ARG = typer.Argument(None, help="YAML config file (flags override it)")
TASK_OPT = typer.Option(None, "--task", help="text-classification (see `ftkit tasks`)")
MODEL_OPT = typer.Option(None, "--model", help="zoo name, local HF folder or hub id")
TRAIN_OPT = typer.Option(None, "--train", help="training data: CSV, TSV, JSONL or Parquet")
VALIDATION_OPT = typer.Option(None, "--validation", help="validation data (default: split from train)")
TEST_OPT = typer.Option(None, "--test", help="test data (default: split from train)")
TEXT_OPT = typer.Option(None, "--text-column", help="input text column [text]")
LABEL_OPT = typer.Option(None, "--label-column", help="label column [label]")
IMAGE_OPT = typer.Option(None, "--image-column", help="image path column of a table [image]")
GROUP_OPT = typer.Option(None, "--group-column", help="report test metrics per value of this column (tables)")
EPOCHS_OPT = typer.Option(None, "--epochs", help="passes over the training data [3]")
BATCH_OPT = typer.Option(None, "--batch-size", help="examples per step [16]")
LR_OPT = typer.Option(None, "--lr", help="peak learning rate [the strategy's default: 5e-5 for full]")
SEED_OPT = typer.Option(None, "--seed", help="random seed [0]")
SET_OPT = typer.Option(None, "--set", help="dotted.key=value override (repeatable)")
QUIET_OPT = typer.Option(False, "--quiet", help="no progress bars or info logs")


def _setup(quiet: bool) -> None:
    # Offline first: never reach a hub unless the user names a hub id (loading.py decides).
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s",
                        handlers=[_handler()], force=True)
    try:
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def _handler() -> logging.Handler:
    from rich.console import Console
    from rich.logging import RichHandler
    return RichHandler(console=Console(stderr=True), show_path=False, show_time=False)


@app.command()
def fit(
    config: Optional[Path] = CONFIG_ARG,
    task: Optional[str] = TASK_OPT,
    model: Optional[str] = MODEL_OPT,
    train: Optional[str] = TRAIN_OPT,
    validation: Optional[str] = VALIDATION_OPT,
    test: Optional[str] = TEST_OPT,
    text_column: Optional[str] = TEXT_OPT,
    label_column: Optional[str] = LABEL_OPT,
    image_column: Optional[str] = IMAGE_OPT,
    group_column: Optional[str] = GROUP_OPT,
    strategy: Optional[str] = typer.Option(None, help="what trains (see `ftkit strategies`) [full]"),
    epochs: Optional[float] = EPOCHS_OPT,
    batch_size: Optional[int] = BATCH_OPT,
    lr: Optional[float] = LR_OPT,
    seed: Optional[int] = SEED_OPT,
    out: Optional[str] = typer.Option(None, help="run folder [runs/<time>-<model>-<strategy>]"),
    set_: Optional[List[str]] = SET_OPT,
    seeds: int = typer.Option(1, "--seeds", help="repeat with seeds seed..seed+N-1; mean ± std in OUT/seeds.json"),
    resume: bool = typer.Option(False, help="continue the killed run in --out"),
    overwrite: bool = typer.Option(False, help="replace a finished run in --out"),
    allow_leakage: bool = typer.Option(False, "--allow-leakage",
                                       help="train even if validation/test rows also occur in another split"),
    quiet: bool = QUIET_OPT,
) -> None:
    """Fine-tune a pretrained model and evaluate it; writes a run folder."""
    from ftkit.api import make_config, resumed_config
    from ftkit.runs.fit import default_out, fit_run

    _setup(quiet)
    options = _given(task=task, model=model, train=train, validation=validation, test=test,
                     text_column=text_column, label_column=label_column, image_column=image_column,
                     group_column=group_column, strategy=strategy, epochs=epochs, batch_size=batch_size, lr=lr,
                     seed=seed, out=out, allow_leakage=allow_leakage or None)
    cfg = make_config(str(config) if config else None, options, set_ or [])
    if seeds != 1:
        from ftkit.runs.repeat import repeat_seeds
        folder = Path(cfg.out or default_out(cfg))
        _print_repeat(repeat_seeds(cfg, seeds, folder, resume=resume, overwrite=overwrite, quiet=quiet),
                      folder / "seeds.json")
        return
    if resume:
        cfg = resumed_config(cfg)
    path = fit_run(cfg, resume=resume, overwrite=overwrite, quiet=quiet, command=["ftkit"] + sys.argv[1:])
    _print_run(path)


@app.command("cv")
def cv_cmd(
    config: Optional[Path] = CONFIG_ARG,
    folds: int = typer.Option(5, "--folds", help="k of the stratified k-fold over --train"),
    task: Optional[str] = TASK_OPT,
    model: Optional[str] = MODEL_OPT,
    train: Optional[str] = TRAIN_OPT,
    validation: Optional[str] = VALIDATION_OPT,
    text_column: Optional[str] = TEXT_OPT,
    label_column: Optional[str] = LABEL_OPT,
    image_column: Optional[str] = IMAGE_OPT,
    strategy: Optional[str] = typer.Option(None, help="what trains (see `ftkit strategies`) [full]"),
    epochs: Optional[float] = EPOCHS_OPT,
    batch_size: Optional[int] = BATCH_OPT,
    lr: Optional[float] = LR_OPT,
    seed: Optional[int] = SEED_OPT,
    out: Path = typer.Option(Path("runs/cv"), help="folder for one run per fold + cv.json"),
    set_: Optional[List[str]] = SET_OPT,
    resume: bool = typer.Option(False, help="keep finished folds, resume a killed one"),
    overwrite: bool = typer.Option(False, help="replace finished runs in --out"),
    quiet: bool = QUIET_OPT,
) -> None:
    """Cross-validate: k runs, each tested on one fold of --train; per-fold and mean ± std."""
    from ftkit.api import make_config
    from ftkit.runs.repeat import cross_validate

    _setup(quiet)
    options = _given(task=task, model=model, train=train, validation=validation, text_column=text_column,
                     label_column=label_column, image_column=image_column, strategy=strategy, epochs=epochs,
                     batch_size=batch_size, lr=lr, seed=seed)
    cfg = make_config(str(config) if config else None, options, set_ or [])
    _print_repeat(cross_validate(cfg, folds, out, resume=resume, overwrite=overwrite, quiet=quiet), out / "cv.json")


def _print_repeat(report: dict, path: Path) -> None:
    from ftkit.runs.repeat import table

    typer.echo(table(report))
    typer.echo(f"saved: {path}")


def _given(**options) -> dict:
    """The flags the user actually typed (None means: not given, keep config/default)."""
    return {k: v for k, v in options.items() if v is not None}


def _print_run(path: Path) -> None:
    summary = json.loads((path / "summary.json").read_text())
    for split, metrics in summary["metrics"].items():
        typer.echo(f"{split}: " + _brief(metrics))
    if "overfitting" in summary:
        typer.echo(summary["overfitting"]["verdict"])
    typer.echo(f"run folder: {path}")


def _brief(metrics: dict) -> str:
    keys = [k for k in ("accuracy", "macro_f1", "f1", "wer", "loss") if k in metrics]
    ci = metrics.get("ci", {})
    return "  ".join(f"{k} {metrics[k]:.4f}" + (f" [{ci[k][0]:.4f}, {ci[k][1]:.4f}]" if k in ci else "")
                     for k in keys) + f"  (n={metrics.get('n', '?')})"


@app.command()
def doctor(
    config: Optional[Path] = CONFIG_ARG,
    task: Optional[str] = TASK_OPT,
    model: Optional[str] = typer.Option(None, "--model", help="model for label noise and token lengths [minilm-l6]"),
    train: Optional[str] = TRAIN_OPT,
    validation: Optional[str] = VALIDATION_OPT,
    test: Optional[str] = TEST_OPT,
    text_column: Optional[str] = TEXT_OPT,
    label_column: Optional[str] = LABEL_OPT,
    image_column: Optional[str] = IMAGE_OPT,
    seed: Optional[int] = SEED_OPT,
    set_: Optional[List[str]] = SET_OPT,
    out: Path = typer.Option(Path("doctor.json"), help="where to write the full report"),
    label_noise: bool = typer.Option(True, "--label-noise/--no-label-noise",
                                     help="rank likely mislabelled rows (runs the model once over the data)"),
    near_threshold: float = typer.Option(0.8, help="near-duplicate texts: Jaccard of word bigrams at least this"),
    strict: bool = typer.Option(False, help="exit with status 1 when a check finds an error (for CI pipelines)"),
    quiet: bool = QUIET_OPT,
) -> None:
    """Check the data before training: schema, duplicates, leakage, conflicts, label noise,
    imbalance, outliers. Exits 0 even with warnings or errors unless --strict (doctor.json has all)."""
    from ftkit.api import make_config
    from ftkit.data.doctor import Options, diagnose, table, write

    _setup(quiet)
    options = _given(task=task, model=model, train=train, validation=validation, test=test,
                     text_column=text_column, label_column=label_column, image_column=image_column, seed=seed)
    cfg = make_config(str(config) if config else None, options, set_ or [])
    report = diagnose(cfg, Options(near_threshold=near_threshold, label_noise=label_noise))
    write(report, out)
    if not quiet:
        from rich.console import Console
        Console(width=None if sys.stdout.isatty() else 160).print(table(report))  # files/pipes: no 80-col wrap
    s = report.summary
    typer.echo(f"{s['errors']} error(s), {s['warnings']} warning(s) in {s['total_seconds']:.1f}s; report: {out}")
    if strict and s["errors"]:
        raise typer.Exit(1)


@app.command("compare")
def compare_cmd(
    config: Optional[Path] = CONFIG_ARG,
    strategies: str = typer.Option(..., help="comma-separated strategies, e.g. full,freeze-bottom,llrd"),
    task: Optional[str] = TASK_OPT,
    model: Optional[str] = MODEL_OPT,
    train: Optional[str] = TRAIN_OPT,
    validation: Optional[str] = VALIDATION_OPT,
    test: Optional[str] = TEST_OPT,
    text_column: Optional[str] = TEXT_OPT,
    label_column: Optional[str] = LABEL_OPT,
    image_column: Optional[str] = IMAGE_OPT,
    epochs: Optional[float] = EPOCHS_OPT,
    batch_size: Optional[int] = BATCH_OPT,
    lr: Optional[float] = LR_OPT,
    seed: Optional[int] = SEED_OPT,
    out: Path = typer.Option(Path("runs/compare"), help="folder for one run per strategy + comparison"),
    set_: Optional[List[str]] = SET_OPT,
    resume: bool = typer.Option(False, help="keep finished strategies, resume a killed one"),
    overwrite: bool = typer.Option(False, help="replace finished runs in --out"),
    quiet: bool = QUIET_OPT,
) -> None:
    """Run several strategies with the same data, budget and seed; table + plot."""
    from ftkit.api import make_config
    from ftkit.runs.compare import compare

    _setup(quiet)
    options = _given(task=task, model=model, train=train, validation=validation, test=test,
                     text_column=text_column, label_column=label_column, image_column=image_column, epochs=epochs,
                     batch_size=batch_size, lr=lr, seed=seed)
    cfg = make_config(str(config) if config else None, options, set_ or [])
    names = [n.strip() for n in strategies.split(",") if n.strip()]
    table = compare(cfg, names, out, overwrite=overwrite, resume=resume, quiet=quiet)
    typer.echo(table.drop(columns=["run_dir"]).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    typer.echo(f"comparison: {out / 'comparison.csv'}, {out / 'comparison.png'}")


@app.command("eval")
def evaluate(
    run_dir: Path = typer.Argument(..., help="folder of a finished run (or of an exported model)"),
    data: str = typer.Option(..., "--data", help="labelled file to score"),
    text_column: Optional[str] = typer.Option(None, "--text-column", "--image-column",
                                              help="default: the run's text (images: path) column"),
    label_column: Optional[str] = typer.Option(None, help="default: the run's label column"),
    out: Optional[Path] = typer.Option(None, help="metrics JSON [RUN_DIR/evaluations/<file>.json]"),
    quiet: bool = typer.Option(False),
) -> None:
    """Score a finished run on a labelled file; prints and saves the metrics."""
    from ftkit.api import load
    from ftkit.io import write_json

    _setup(quiet)
    run = load(run_dir)
    examples = run.predictor.read(data, {"text": text_column, "label": label_column})
    metrics, _ = run.predictor.evaluate(examples)
    target = out or run.path / "evaluations" / f"{Path(data).stem}.json"
    write_json(target, {"data": str(data), "metrics": metrics})
    typer.echo(f"{data}: " + _brief(metrics))
    typer.echo(f"saved: {target}")


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="folder of a finished run (or of an exported model)"),
    data: Optional[str] = typer.Option(None, "--data", help="file with a text column (images: a folder or a table)"),
    text: Optional[List[str]] = typer.Option(None, "--text", "--image",
                                             help="text to classify, or an image file (repeatable)"),
    text_column: Optional[str] = typer.Option(None, help="default: the run's text (NER: tokens; images: path) column"),
    out: Optional[Path] = typer.Option(None, help="write .csv or .jsonl (default: JSON lines to stdout)"),
    quiet: bool = typer.Option(False),
) -> None:
    """Predict labels (with probabilities) or entities for a file or for texts."""
    from ftkit.api import load
    from ftkit.predict import predict_frame, write_predictions

    _setup(quiet)
    if (data is None) == (not text):
        raise FtkitError("give either --data PATH or one or more --text (images: --image)")
    if out is not None and out.suffix.lower() not in (".csv", ".jsonl"):
        raise FtkitError(f"--out {out}: use a .csv or .jsonl file")
    frame = predict_frame(load(run_dir), data, text, text_column)
    if out is None:
        sys.stdout.write(frame.to_json(orient="records", lines=True, force_ascii=False))
        return
    write_predictions(frame, out)
    typer.echo(f"{len(frame)} predictions written to {out}")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="folder of a finished run"),
    out: Path = typer.Option(..., help="folder for the standalone model"),
    overwrite: bool = typer.Option(False, help="replace --out if it exists"),
    quiet: bool = typer.Option(False),
) -> None:
    """A standalone model folder (safetensors; Hugging Face format where the model is one); LoRA
    adapters are merged in. `ftkit predict` and `ftkit eval` take it like a run folder."""
    from ftkit.api import load

    _setup(quiet)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FtkitError(f"--out {out} is not empty; pass --overwrite to replace it")
    with atomic_path(out) as tmp:
        tmp.mkdir()
        load(run_dir).predictor.export(tmp)
    how = "transformers' from_pretrained or " if (out / "config.json").is_file() else ""
    typer.echo(f"model exported to {out} (load it with {how}`ftkit predict {out} ...`)")


@app.command()
def models() -> None:
    """Named offline models and where they come from."""
    from rich.console import Console
    from rich.table import Table

    from ftkit.models.zoo import ZOO, installed

    table = Table("name", "installed", "package", "tasks", "description")
    for name in ZOO.names():
        m = ZOO.get(name)
        table.add_row(name, "yes" if installed(m) else "no", m.package, ", ".join(m.tasks), m.description)
    Console().print(table)
    typer.echo("Also accepted: any local Hugging Face model folder, or an org/name hub id (needs network).")


@app.command()
def tasks() -> None:
    """Registered tasks."""
    from ftkit.tasks import TASKS, _load_builtin
    _load_builtin()
    for name, text in TASKS.describe().items():
        typer.echo(f"{name:24s} {text}")


@app.command()
def strategies(task: str = typer.Option("text-classification", help="show the default lr for this task")) -> None:
    """Registered fine-tuning strategies (what trains)."""
    from ftkit.strategies import STRATEGIES, default_lr, get_strategy
    from ftkit.tasks import get_task

    get_strategy("full")  # loads the built-in strategies
    kind = get_task(task)
    typer.echo(f"{'name':18s} {'default lr':10s} what trains")
    for name, text in STRATEGIES.describe().items():
        typer.echo(f"{name:18s} {default_lr(name, kind):<10g} {text}")


@app.command()
def datasets(
    name: Optional[str] = typer.Argument(None, help="dataset to write (omit to list them)"),
    out: Path = typer.Option(Path("data"), help="parent folder (files go to OUT/NAME/)"),
    n_train: Optional[int] = typer.Option(None, help="keep only the first N training examples"),
    n_test: Optional[int] = typer.Option(None, help="keep only the first N test examples"),
) -> None:
    """Write a real offline dataset (from a registry package) as plain files."""
    from ftkit.datasets import DATASETS

    if name is None:
        for key, text in DATASETS.describe().items():
            typer.echo(f"{key:24s} {text}")
        return
    for split, path in DATASETS.get(name)(out / name, n_train=n_train, n_test=n_test).items():
        typer.echo(f"{split}: {path}")


@app.command()
def env() -> None:
    """What this machine offers: threads, bf16, CUDA, and the versions ftkit runs with."""
    import torch

    from ftkit.runs.rundir import versions
    from ftkit.training.device import cpu_bf16_is_fast, pick_device, resolve_precision

    device = pick_device("auto")
    for key, value in versions().items():
        typer.echo(f"{key:22s} {value}")
    typer.echo(f"{'cpu threads':22s} {torch.get_num_threads()} ({torch.backends.cpu.get_cpu_capability()})")
    typer.echo(f"{'cuda':22s} {torch.cuda.get_device_name(0) if device.type == 'cuda' else 'none'}")
    typer.echo(f"{'cpu bf16 fast':22s} {cpu_bf16_is_fast()}")
    typer.echo(f"{'default precision':22s} {resolve_precision('auto', device)} on {device}")


def main() -> None:
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        app()
    except FtkitError as err:
        if debug:
            raise
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted; continue a fit with --resume --out RUN_DIR", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
