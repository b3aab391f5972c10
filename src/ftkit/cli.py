"""Command line: parse -> config -> call the API -> print. No logic of its own.

Errors a user can cause print one line and exit 2; ``--debug`` anywhere shows the traceback.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ftkit.cli_import import import_app
from ftkit.cli_output import brief, print_auto, print_repeat, print_run, setup_logging
from ftkit.errors import FtkitError

try:  # typer >= 0.22 vendors click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer runs on click itself
    from click.exceptions import ClickException

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fine-tune pretrained models on your own data, the right way by default.")
app.add_typer(import_app, name="import")

# Options shared by `fit` and `compare` (defined once so both commands read the same).
CONFIG_ARG = typer.Argument(None, help="YAML config file (flags override it)")
TASK_OPT = typer.Option(None, "--task", help="text-classification, token-classification, image-classification, "
                        "speech-recognition (see `ftkit tasks`)")
MODEL_OPT = typer.Option(None, "--model", help="zoo name, local HF folder or hub id")
TRAIN_OPT = typer.Option(None, "--train", help="training data: CSV, TSV, JSONL or Parquet")
VALIDATION_OPT = typer.Option(None, "--validation", help="validation data (default: split from train)")
TEST_OPT = typer.Option(None, "--test", help="test data (default: split from train)")
TEXT_OPT = typer.Option(None, "--text-column", help="input text column [text]")
LABEL_OPT = typer.Option(None, "--label-column", help="label column [label]")
IMAGE_OPT = typer.Option(None, "--image-column", help="image path column of a table [image]")
AUDIO_OPT = typer.Option(None, "--audio-column", help="audio path column of a table [audio] (speech recognition: "
                         "--text-column holds the transcript)")
GROUP_OPT = typer.Option(None, "--group-column", help="report test metrics per value of this column (tables)")
REFERENCE_OPT = typer.Option(None, "--reference-data", help="inputs of the original task (same columns as --train, "
                             "labels optional): forgetting measured before/after, 'retention' in summary.json")
EPOCHS_OPT = typer.Option(None, "--epochs", help="passes over the training data [3]")
BATCH_OPT = typer.Option(None, "--batch-size", help="examples per step [16]")
LR_OPT = typer.Option(None, "--lr", help="peak learning rate [the strategy's default: 5e-5 for full]")
SEED_OPT = typer.Option(None, "--seed", help="random seed [0]")
SET_OPT = typer.Option(None, "--set", help="dotted.key=value override (repeatable)")
QUIET_OPT = typer.Option(False, "--quiet", help="no progress bars or info logs")
TRACKING_OPT = typer.Option(None, "--tracking", help="mlflow: also log params, metrics, summary and run folder "
                            "to MLflow [none]")
TRACKING_URI_OPT = typer.Option(None, "--tracking-uri", help="MLflow tracking URI [sqlite:///mlruns/mlflow.db]")


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
    audio_column: Optional[str] = AUDIO_OPT,
    group_column: Optional[str] = GROUP_OPT,
    reference_data: Optional[str] = REFERENCE_OPT,
    strategy: Optional[str] = typer.Option(None, help="what trains (see `ftkit strategies`) [full]"),
    epochs: Optional[float] = EPOCHS_OPT,
    batch_size: Optional[int] = BATCH_OPT,
    lr: Optional[float] = LR_OPT,
    seed: Optional[int] = SEED_OPT,
    out: Optional[str] = typer.Option(None, help="run folder [runs/<time>-<model>-<strategy>]"),
    set_: Optional[List[str]] = SET_OPT,
    seeds: int = typer.Option(1, "--seeds", help="repeat with seeds seed..seed+N-1; mean ± std in OUT/seeds.json"),
    baseline: Optional[List[str]] = typer.Option(
        None, "--baseline", help="afterwards also run scratch (random init, same budget) and/or probe (linear "
        "probe) into RUN_DIR/baselines/; repeatable or a comma list; verdict in summary.json"),
    resume: bool = typer.Option(False, help="continue the killed run in --out"),
    overwrite: bool = typer.Option(False, help="replace a finished run in --out"),
    allow_leakage: bool = typer.Option(False, "--allow-leakage",
                                       help="train even if validation/test rows also occur in another split"),
    tracking: Optional[str] = TRACKING_OPT,
    tracking_uri: Optional[str] = TRACKING_URI_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Fine-tune a pretrained model and evaluate it; writes a run folder."""
    from ftkit.api import make_config, resumed_config

    setup_logging(quiet)
    options = _given(task=task, model=model, train=train, validation=validation, test=test,
                     text_column=text_column, label_column=label_column, image_column=image_column, audio_column=audio_column,
                     group_column=group_column, reference_data=reference_data, strategy=strategy, epochs=epochs,
                     batch_size=batch_size, lr=lr, seed=seed, out=out, allow_leakage=allow_leakage or None, tracking=tracking,
                     tracking_uri=tracking_uri)
    cfg = make_config(str(config) if config else None, options, set_ or [])
    if baseline:
        from ftkit.runs.baselines import check_names, fit_with_baselines
        from ftkit.runs.precheck import precheck

        check_names(baseline)
        precheck(cfg, resume=resume, overwrite=overwrite)  # the fine-tuned run's input, before torch loads
        print_run(fit_with_baselines(cfg, baseline, seeds=seeds, resume=resume, overwrite=overwrite, quiet=quiet,
                                      command=["ftkit"] + sys.argv[1:]))
        return
    if seeds != 1:  # the first seed's run checks the data before torch loads (runs/repeat.py)
        from ftkit.runs.repeat import repeat_seeds
        if cfg.out:
            folder = Path(cfg.out)
        else:
            from ftkit.runs.fit import default_out
            folder = Path(default_out(cfg))
        print_repeat(repeat_seeds(cfg, seeds, folder, resume=resume, overwrite=overwrite, quiet=quiet),
                      folder / "seeds.json")
        return
    from ftkit.runs.precheck import precheck

    precheck(cfg, resume=resume, overwrite=overwrite)  # bad input is refused before torch loads (seconds)
    from ftkit.runs.fit import fit_run

    if resume:
        cfg = resumed_config(cfg)
    path = fit_run(cfg, resume=resume, overwrite=overwrite, quiet=quiet, command=["ftkit"] + sys.argv[1:])
    print_run(path)


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
    audio_column: Optional[str] = AUDIO_OPT,
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

    setup_logging(quiet)
    options = _given(task=task, model=model, train=train, validation=validation, text_column=text_column,
                     label_column=label_column, image_column=image_column, audio_column=audio_column, strategy=strategy, epochs=epochs,
                     batch_size=batch_size, lr=lr, seed=seed)
    cfg = make_config(str(config) if config else None, options, set_ or [])
    print_repeat(cross_validate(cfg, folds, out, resume=resume, overwrite=overwrite, quiet=quiet), out / "cv.json")


def _given(**options) -> dict:
    """The flags the user actually typed (None means: not given, keep config/default)."""
    return {k: v for k, v in options.items() if v is not None}


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
    audio_column: Optional[str] = AUDIO_OPT,
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

    setup_logging(quiet)
    options = _given(task=task, model=model, train=train, validation=validation, test=test,
                     text_column=text_column, label_column=label_column, image_column=image_column, audio_column=audio_column, seed=seed)
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
    strategies: str = typer.Option(..., help="comma-separated strategies, e.g. full,freeze-bottom,llrd; a variant "
                                   "with its own settings: full[train.l2sp=0.01; model.dropout=0.2]"),
    task: Optional[str] = TASK_OPT,
    model: Optional[str] = MODEL_OPT,
    train: Optional[str] = TRAIN_OPT,
    validation: Optional[str] = VALIDATION_OPT,
    test: Optional[str] = TEST_OPT,
    text_column: Optional[str] = TEXT_OPT,
    label_column: Optional[str] = LABEL_OPT,
    image_column: Optional[str] = IMAGE_OPT,
    audio_column: Optional[str] = AUDIO_OPT,
    reference_data: Optional[str] = REFERENCE_OPT,
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
    from ftkit.runs.compare import compare, split_variants
    from ftkit.runs.precheck import precheck_compare

    setup_logging(quiet)
    options = _given(task=task, model=model, train=train, validation=validation, test=test,
                     text_column=text_column, label_column=label_column, image_column=image_column, audio_column=audio_column, epochs=epochs,
                     batch_size=batch_size, lr=lr, seed=seed, reference_data=reference_data)
    cfg = make_config(str(config) if config else None, options, set_ or [])
    names = split_variants(strategies)
    precheck_compare(cfg, names, out, resume=resume, overwrite=overwrite)  # each strategy trains in a new process
    table = compare(cfg, names, out, overwrite=overwrite, resume=resume, quiet=quiet)
    typer.echo(table.drop(columns=["run_dir"]).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    typer.echo(f"comparison: {out / 'comparison.csv'}, {out / 'comparison.png'}")


@app.command("rank")
def rank_cmd(
    config: Optional[Path] = CONFIG_ARG,
    models: str = typer.Option(..., "--models", help="comma-separated candidates; random:NAME = NAME, random weights"),
    task: Optional[str] = TASK_OPT,
    train: Optional[str] = TRAIN_OPT,
    validation: Optional[str] = VALIDATION_OPT,
    test: Optional[str] = TEST_OPT,
    text_column: Optional[str] = TEXT_OPT,
    label_column: Optional[str] = LABEL_OPT,
    image_column: Optional[str] = IMAGE_OPT,
    audio_column: Optional[str] = AUDIO_OPT,
    batch_size: Optional[int] = BATCH_OPT,
    lr: Optional[float] = LR_OPT,
    seed: Optional[int] = SEED_OPT,
    set_: Optional[List[str]] = SET_OPT,
    out: Path = typer.Option(Path("rank.json"), help="where to write the ranking"),
    confirm_top: int = typer.Option(0, "--confirm-top", help="fine-tune the top K under successive halving (0: off)"),
    confirm_epochs: float = typer.Option(1.0, "--confirm-epochs", help="epochs of the first rung (x3 per rung)"),
    runs: Optional[Path] = typer.Option(None, "--runs", help="folder of the confirm fine-tunes [OUT-runs/]"),
    quiet: bool = QUIET_OPT,
) -> None:
    """Rank candidate pretrained models on your data before training: LogME, kNN and linear-probe
    accuracy of frozen features; --confirm-top K checks the order with short fine-tunes."""
    from rich.console import Console

    from ftkit.api import make_config
    from ftkit.selection.rank import rank_models, table

    setup_logging(quiet)
    options = _given(task=task, train=train, validation=validation, test=test, text_column=text_column,
                     label_column=label_column, image_column=image_column, audio_column=audio_column, batch_size=batch_size, lr=lr, seed=seed)
    cfg = make_config(str(config) if config else None, options, set_ or [])
    names = [n.strip() for n in models.split(",") if n.strip()]
    report = rank_models(cfg, names, confirm_top=confirm_top, confirm_epochs=confirm_epochs, runs=runs, out=out,
                         quiet=quiet)
    Console(width=None if sys.stdout.isatty() else 160).print(table(report))
    if "confirm" in report:
        typer.echo(report["confirm"]["verdict"])
    typer.echo(f"ranking: {out}")


@app.command("eval")
def evaluate(
    run_dir: Path = typer.Argument(..., help="folder of a finished run (or of an exported model)"),
    data: str = typer.Option(..., "--data", help="labelled file to score"),
    text_column: Optional[str] = typer.Option(None, "--text-column", "--image-column",
                                              help="default: the run's text (images: path; speech "
                                              "recognition: transcript) column"),
    label_column: Optional[str] = typer.Option(None, help="default: the run's label column"),
    audio_column: Optional[str] = typer.Option(None, "--audio-column", help="speech: default the run's audio column"),
    out: Optional[Path] = typer.Option(None, help="metrics JSON [RUN_DIR/evaluations/<file>.json]"),
    quiet: bool = typer.Option(False),
) -> None:
    """Score a finished run on a labelled file; prints and saves the metrics."""
    from ftkit.api import load
    from ftkit.io import write_json

    setup_logging(quiet)
    run = load(run_dir)
    examples = run.predictor.read(data, {"text": text_column, "label": label_column, "audio": audio_column})
    metrics, _ = run.predictor.evaluate(examples)
    target = out or run.path / "evaluations" / f"{Path(data).stem}.json"
    write_json(target, {"data": str(data), "metrics": metrics})
    typer.echo(f"{data}: " + brief(metrics))
    typer.echo(f"saved: {target}")


@app.command("tune")
def tune_cmd(
    config: Optional[Path] = CONFIG_ARG,
    trials: Optional[int] = typer.Option(None, "--trials", help="finished trials in total (a resumed study counts its own)"),
    time_budget: Optional[str] = typer.Option(None, "--time-budget", help="e.g. 90s, 20m, 1.5h: trials + refit fit in it"),
    task: Optional[str] = TASK_OPT,
    model: Optional[str] = MODEL_OPT,
    train: Optional[str] = TRAIN_OPT,
    validation: Optional[str] = VALIDATION_OPT,
    test: Optional[str] = TEST_OPT,
    text_column: Optional[str] = TEXT_OPT,
    label_column: Optional[str] = LABEL_OPT,
    image_column: Optional[str] = IMAGE_OPT,
    audio_column: Optional[str] = AUDIO_OPT,
    strategy: Optional[str] = typer.Option(None, help="fix the strategy (default: searched among full, llrd, lora, freeze-bottom)"),
    epochs: Optional[float] = EPOCHS_OPT,
    batch_size: Optional[int] = BATCH_OPT,
    lr: Optional[float] = LR_OPT,
    seed: Optional[int] = SEED_OPT,
    set_: Optional[List[str]] = SET_OPT,
    out: Path = typer.Option(Path("runs/tune"), help="folder for study.db, one run per trial, best/, tune.json"),
    resume: bool = typer.Option(False, help="continue the study in --out"),
    sampler: str = typer.Option("tpe", help="tpe or random"),
    pruner: str = typer.Option("median", help="median, halving or none"),
    refit_on_all: bool = typer.Option(False, "--refit-on-all", help="refit on train + validation (best trial's epochs)"),
    executor: str = typer.Option("local", help="local, or ray (trials in parallel on a Ray cluster)"),
    address: Optional[str] = typer.Option(None, help="Ray cluster: auto or ray://host:port (default: start a local one)"),
    trial_cpus: int = typer.Option(1, "--trial-cpus", help="CPUs per Ray trial (its train.threads)"),
    quiet: bool = QUIET_OPT,
) -> None:
    """Tune hyperparameters (Optuna; pruning, resumable), refit the best; table + OUT/tune.json."""
    from ftkit.api import make_config
    from ftkit.hpo.report import table
    from ftkit.hpo.space import split_config
    from ftkit.hpo.tune import tune
    from ftkit.runs.precheck import precheck_data

    setup_logging(quiet)
    options = _given(task=task, model=model, train=train, validation=validation, test=test,
                     text_column=text_column, label_column=label_column, image_column=image_column, audio_column=audio_column,
                     strategy=strategy, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    tree, spec = split_config(str(config) if config else None)
    cfg = make_config(tree, options, set_ or [])
    precheck_data(cfg, resume=resume)  # bad data is refused before optuna and torch load
    report = tune(cfg, out, trials=trials, time_budget=time_budget, resume=resume, sampler=sampler, pruner=pruner,
                  executor=executor, address=address, trial_cpus=trial_cpus, refit_on_all=refit_on_all,
                  space=spec, search_strategy=False if strategy else None, quiet=quiet)
    from rich.console import Console
    Console(width=None if sys.stdout.isatty() else 120).print(table(report))
    typer.echo(f"saved: {out / 'tune.json'}, {out / 'trials.csv'}, {out / 'trials.png'}"
               + (f"; best model: {report['refit']['run_dir']}" if report.get("refit") else ""))


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="folder of a finished run (or of an exported model)"),
    data: Optional[str] = typer.Option(None, "--data", help="file with a text column (images: a folder or a table)"),
    text: Optional[List[str]] = typer.Option(None, "--text", "--image", "--audio",
                                             help="text to classify, or an image or audio file (repeatable)"),
    text_column: Optional[str] = typer.Option(None, help="default: the run's text (NER: tokens; images, audio: "
                                              "path) column"),
    out: Optional[Path] = typer.Option(None, help="write .csv or .jsonl (default: JSON lines to stdout)"),
    quiet: bool = typer.Option(False),
) -> None:
    """Predict labels (with probabilities) or entities for a file or for texts."""
    from ftkit.api import load

    setup_logging(quiet)
    if (data is None) == (not text):
        raise FtkitError("give either --data PATH or one or more --text (images: --image, audio: --audio)")
    if out is not None and out.suffix.lower() not in (".csv", ".jsonl"):
        raise FtkitError(f"--out {out}: use a .csv or .jsonl file")
    run = load(run_dir)  # a wrong folder is refused before pandas and torch load
    from ftkit.predict import predict_frame, write_predictions

    frame = predict_frame(run, data, text, text_column)
    if out is None:
        sys.stdout.write(frame.to_json(orient="records", lines=True, force_ascii=False))
        return
    write_predictions(frame, out)
    typer.echo(f"{len(frame)} predictions written to {out}")


@app.command()
def advise(
    config: Optional[Path] = CONFIG_ARG,
    task: Optional[str] = TASK_OPT,
    model: Optional[str] = MODEL_OPT,
    train: Optional[str] = TRAIN_OPT,
    validation: Optional[str] = VALIDATION_OPT,
    test: Optional[str] = TEST_OPT,
    text_column: Optional[str] = TEXT_OPT,
    label_column: Optional[str] = LABEL_OPT,
    image_column: Optional[str] = IMAGE_OPT,
    audio_column: Optional[str] = AUDIO_OPT,
    epochs: Optional[float] = EPOCHS_OPT,
    batch_size: Optional[int] = BATCH_OPT,
    seed: Optional[int] = SEED_OPT,
    set_: Optional[List[str]] = SET_OPT,
    models: Optional[str] = typer.Option(None, help="comma-separated candidate models, ranked by transferability"),
    strategies: Optional[str] = typer.Option(None, help="comma-separated strategies to estimate [full,lora,lp-ft,"
                                             "linear-probe; speech recognition: frozen-encoder,lora,full]"),
    budget: Optional[str] = typer.Option(None, help="time budget for a fit, e.g. 90s, 30m, 1.5h"),
    target_metric: Optional[float] = typer.Option(None, help="accuracy that would be good enough, e.g. 0.9"),
    out: Path = typer.Option(Path("advice.json"), help="where to write the full advice"),
    quiet: bool = QUIET_OPT,
) -> None:
    """Before spending compute: should I fine-tune, which model and strategy, how long will it
    take, will it fit in memory? Profiles a few real steps per strategy; prints the advised `ftkit fit`."""
    from ftkit.api import advise as run_advise, make_config
    from ftkit.advisor.table import render
    from ftkit.runs.precheck import precheck_data

    setup_logging(quiet)
    options = _given(task=task, model=model, train=train, validation=validation, test=test,
                     text_column=text_column, label_column=label_column, image_column=image_column, audio_column=audio_column, epochs=epochs,
                     batch_size=batch_size, seed=seed)
    # Bad data is refused before the strategies are profiled (each in a process that imports torch).
    precheck_data(make_config(str(config) if config else None, options, set_ or []))
    result = run_advise(str(config) if config else None, models=models, strategies=strategies, budget=budget,
                        target_metric=target_metric, out=out, overrides=set_ or [], **options)
    from rich.console import Console
    console = Console(width=None if sys.stdout.isatty() else 160)
    for part in render(result):
        console.print(part)
    typer.echo(f"advice: {out}")


@app.command("report")
def report_cmd(
    run_dir: Path = typer.Argument(..., help="a finished run, or a compare / cv / seeds / tune / auto folder"),
    quiet: bool = QUIET_OPT,
) -> None:
    """RUN_DIR/report.html: one self-contained page (plots embedded, opens offline) with curves,
    confusion matrix, per-class scores, calibration, doctor findings and advice; a run's model card
    (model/README.md) is rewritten too. fit, compare, cv, tune and auto write it themselves."""
    from ftkit.api import report

    setup_logging(quiet)
    typer.echo(f"report: {report(run_dir)}")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="folder of a finished run"),
    out: Path = typer.Option(..., help="folder for the standalone model"),
    overwrite: bool = typer.Option(False, help="replace --out if it exists"),
    quiet: bool = typer.Option(False),
) -> None:
    """A standalone model folder (safetensors; Hugging Face format where the model is one); LoRA
    adapters are merged in. `ftkit predict` and `ftkit eval` take it like a run folder."""
    from ftkit.api import export as export_model

    setup_logging(quiet)
    export_model(run_dir, out, overwrite=overwrite)
    how = "transformers' from_pretrained or " if (out / "config.json").is_file() else ""
    typer.echo(f"model exported to {out} (load it with {how}`ftkit predict {out} ...`)")


@app.command()
def auto(
    config: Optional[Path] = CONFIG_ARG,
    time_budget: str = typer.Option(..., "--time-budget", help="all of it, from start to report: e.g. 30m, 1h, 900s"),
    models_: Optional[str] = typer.Option(None, "--models", help="candidates to rank, comma-separated [--model]"),
    task: Optional[str] = TASK_OPT,
    model: Optional[str] = MODEL_OPT,
    train: Optional[str] = TRAIN_OPT,
    validation: Optional[str] = VALIDATION_OPT,
    test: Optional[str] = TEST_OPT,
    text_column: Optional[str] = TEXT_OPT,
    label_column: Optional[str] = LABEL_OPT,
    image_column: Optional[str] = IMAGE_OPT,
    audio_column: Optional[str] = AUDIO_OPT,
    strategy: Optional[str] = typer.Option(None, help="fix the strategy [the advised one]"),
    epochs: Optional[float] = EPOCHS_OPT,
    seed: Optional[int] = SEED_OPT,
    set_: Optional[List[str]] = SET_OPT,
    out: Path = typer.Option(Path("runs/auto"), help="folder for doctor/advice/tune and the final run"),
    overwrite: bool = typer.Option(False, help="replace what --out holds"),
    resume: bool = typer.Option(False, help="continue a killed auto in --out (finished stages are kept)"),
    executor: str = typer.Option("local", help="tuning trials: local, or ray"),
    address: Optional[str] = typer.Option(None, help="Ray cluster for --executor ray [start a local one]"),
    quiet: bool = QUIET_OPT,
) -> None:
    """One command within a time budget: doctor -> rank -> advise -> tune -> final fit -> report."""
    from ftkit.api import make_config
    from ftkit.hpo.tune import parse_duration
    from ftkit.runs.auto import auto_run, check_budget, process_start

    started = process_start()
    setup_logging(quiet)
    options = _given(task=task, model=model, train=train, validation=validation, test=test,
                     text_column=text_column, label_column=label_column, image_column=image_column, audio_column=audio_column,
                     strategy=strategy, epochs=epochs, seed=seed)
    cfg = make_config(str(config) if config else None, options, set_ or [])
    candidates = [m.strip() for m in models_.split(",") if m.strip()] if models_ else None
    report = auto_run(cfg, out, time_budget=check_budget(parse_duration(time_budget)), models=candidates,
                      overwrite=overwrite, resume=resume, executor=executor, address=address,
                      strategy_given=True if strategy else None, started=started, quiet=quiet)
    print_auto(report, out)


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
    n_train: Optional[int] = typer.Option(None, help="keep N training examples (the first N, or a seeded sample where the dataset says so)"),
    n_test: Optional[int] = typer.Option(None, help="keep N test examples (likewise)"),
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
        code = app(standalone_mode=False)  # usage errors reach us, so they print like ftkit's own
    except FtkitError as err:
        if debug:
            raise
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except ClickException as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # `ftkit` alone: the help is printed already
            sys.exit(err.exit_code)
        if debug:
            raise
        typer.echo(f"error: {usage_message(err)}", err=True)
        sys.exit(err.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        code = 130
    if code == 130:  # Ctrl-C (typer turns it into exit code 130)
        typer.echo("interrupted; continue a fit with --resume --out RUN_DIR", err=True)
    sys.exit(code if isinstance(code, int) else 0)


def usage_message(err: ClickException) -> str:
    """typer's usage error on one line, e.g. "no such option: --epoch; see `ftkit fit --help`"."""
    text = " ".join(err.format_message().split()).rstrip(".")  # typer's messages may hold line breaks
    text = text[:1].lower() + text[1:]
    ctx = getattr(err, "ctx", None)
    return f"{text}; see `{ctx.command_path} --help`" if ctx is not None else text


if __name__ == "__main__":
    main()
