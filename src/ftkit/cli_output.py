"""What the CLI shows: its logging setup, and the tables and summaries of what the api returns."""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import typer

from ftkit.errors import FtkitError
from ftkit.evaluation.metrics import HEADLINE

try:  # typer >= 0.22 vendors click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer runs on click itself
    from click.exceptions import ClickException


def setup_logging(quiet: bool) -> None:
    # Offline first: never reach a hub unless the user names a hub id (loading.py decides).
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s",
                        handlers=[_handler()], force=True)
    if "transformers" not in sys.modules and "huggingface_hub" not in sys.modules:
        # told through the environment, which both read when they load: importing transformers
        # just to quiet it costs ~1 s, and bad input should be refused before that
        os.environ["TRANSFORMERS_VERBOSITY"] = "error"
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        return
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _handler() -> logging.Handler:
    from rich.console import Console
    from rich.logging import RichHandler
    return RichHandler(console=Console(stderr=True), show_path=False, show_time=False)


def console(width: int = 160):
    """A rich console; files and pipes get `width` columns, not the 80 of no terminal."""
    from rich.console import Console
    return Console(width=None if sys.stdout.isatty() else width)


def print_repeat(report: dict, path: Path | None = None) -> None:
    """cv.json / seeds.json as a table; `path` [the folder of its runs/seeds.json]."""
    from ftkit.runs.repeat import table

    typer.echo(table(report))
    typer.echo(f"saved: {path or Path(report['runs'][0]['run_dir']).parent / 'seeds.json'}")


def print_doctor(report: dict, out: Path, quiet: bool) -> None:
    from ftkit.data.doctor import Finding, Report, table

    if not quiet:
        console().print(table(Report([Finding(**f) for f in report["checks"]], report["summary"])))
    s = report["summary"]
    typer.echo(f"{s['errors']} error(s), {s['warnings']} warning(s) in {s['total_seconds']:.1f}s; report: {out}")


def print_rank(report: dict, out: Path) -> None:
    from ftkit.selection.rank import table

    console().print(table(report))
    if "confirm" in report:
        typer.echo(report["confirm"]["verdict"])
    typer.echo(f"ranking: {out}")


def print_tune(report: dict, out: Path) -> None:
    from ftkit.hpo.report import table

    console(120).print(table(report))
    typer.echo(f"saved: {out / 'tune.json'}, {out / 'trials.csv'}, {out / 'trials.png'}"
               + (f"; best model: {report['refit']['run_dir']}" if report.get("refit") else ""))


def print_advice(advice: dict, out: Path) -> None:
    from ftkit.advisor.table import render

    screen = console()
    for part in render(advice):
        screen.print(part)
    typer.echo(f"advice: {out}")


def print_models(models: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "installed", "package", "tasks", "description")
    for m in models:
        table.add_row(m["name"], "yes" if m["installed"] else "no", m["package"], ", ".join(m["tasks"]),
                      m["description"])
    Console().print(table)
    typer.echo("Also accepted: any local Hugging Face model folder, or an org/name hub id (needs network).")


def print_run(path: Path) -> None:
    summary = json.loads((path / "summary.json").read_text())
    for split, metrics in summary["metrics"].items():
        typer.echo(f"{split}: " + brief(metrics))
    if "zero_shot" in summary:
        typer.echo(summary["zero_shot"]["verdict"])
    if "overfitting" in summary:
        typer.echo(summary["overfitting"]["verdict"])
    if "retention" in summary:
        typer.echo("retention: " + summary["retention"]["verdict"])
    if "baselines" in summary:
        typer.echo(summary["baselines"]["verdict"])
    typer.echo(f"run folder: {path}")


def brief(metrics: dict) -> str:
    keys = [k for k in HEADLINE if k in metrics and k not in ("precision", "recall")]
    ci = metrics.get("ci", {})
    return "  ".join(f"{k} {metrics[k]:.4f}" + (f" [{ci[k][0]:.4f}, {ci[k][1]:.4f}]" if k in ci else "")
                     for k in keys) + f"  (n={metrics.get('n', '?')})"


def print_auto(report: dict, out: Path) -> None:
    final, stages = report["final"], report["stages"]
    typer.echo("stages: " + ", ".join(f"{k} {v['seconds']:.0f}s" for k, v in stages.items())
               + f"; total {report['seconds']:.0f}s of {report['time_budget_seconds']:.0f}s")
    typer.echo(f"chosen: {report['model']}, {report['strategy']}, "
               + ", ".join(f"{k}={final['hyperparameters'][k]:.3g}" for k in ("lr", "epochs", "weight_decay")))
    tune = report.get("tune") or {}
    if tune:
        typer.echo(f"tuning: {tune['trials']['complete']} trials complete, {tune['trials']['pruned']} pruned")
    picked = final["validation"] if final["validation"] is not None else ((tune.get("best") or {}).get("value"))
    typer.echo(f"{final['metric']}: " + (f"validation {picked:.4f}" + (" (the study's trial)" if final["validation"] is None
                                                                        else "") + "; " if picked is not None else "")
               + "test " + brief(final["test"]))
    typer.echo(f"run folder: {report['final_run']}  (report: {out / 'auto.json'})")


def run(app: typer.Typer) -> None:
    """Run the CLI app: errors a user can cause print one line (exit 2, usage errors typer's
    status); ``--debug`` anywhere shows the traceback instead."""
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


def print_export(out: Path) -> None:
    """Where the model went; for an ONNX export the parity check, sizes and int8 accuracy (export.json)."""
    report = out / "export.json"
    if not report.is_file():
        how = "transformers' from_pretrained or " if (out / "config.json").is_file() else ""
        typer.echo(f"model exported to {out} (load it with {how}`ftkit predict {out} ...`)")
        return
    info = json.loads(report.read_text())
    parity = info.get("parity", {})
    typer.echo(f"ONNX model in {out}: onnxruntime vs torch max |diff| {parity.get('max_abs_diff', float('nan')):.2e} "
               f"over {parity.get('examples', '?')} inputs")
    for name, size in info.get("size_bytes", {}).items():
        typer.echo(f"  {name}: {size / 2**20:.1f} MiB")
    int8 = info.get("int8")
    if int8:
        metric = int8.get("metric", "accuracy")
        typer.echo(f"  int8 {metric}: {int8['accuracy_before']:.4f} before, {int8['accuracy_after']:.4f} after"
                   + (f" (on {int8['data']})" if int8.get("data") else ""))
    typer.echo(f"serve it: ftkit serve {out}   predict: ftkit predict {out} --text ...")
