"""The data doctor: checks a dataset before training and says what to fix.

    ftkit doctor --train train.csv --test test.csv     every check, doctor.json + a table
    ftkit fit ...                                       the fast checks, RUN_DIR/doctor.json

Each check is a function ``check(ctx) -> Finding`` registered in ``CHECKS``; a Finding has a
severity (ok / warn / error, or skipped with the reason), a count, example rows (as the readers
number them: the file's line, a Parquet row, or an image's path) and a suggested fix.
The fast checks (schema, duplicates, leakage, conflicts, imbalance, outliers) only hash and count,
O(n); `label-noise` runs the pretrained model and is left to `ftkit doctor`.

Audio (speech recognition, audio classification): duplicates and leakage compare file bytes and
decoded samples (the same clip as WAV and FLAC is one input); a speech-recognition clip's "label"
is its transcript, so `conflicts` finds one clip with two transcripts. Near-duplicate audio is
not checked (reported as skipped).

`fit` refuses leaked splits (an input of validation/test, after normalising case, punctuation
and spacing, also in another split) unless --allow-leakage; near-duplicate leakage is reported
as a warning only, since "near" is a threshold, not a certainty.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

from ftkit.data import doctor_checks  # noqa: F401  (registers the checks)
from ftkit.data.doctor_checks import skipped_label_noise
from ftkit.data.doctor_schema import scan_files
from ftkit.data.findings import (AUDIO_KINDS, CHECKS, FAST, FULL, SEVERITIES, SHOWN, Context,  # noqa: F401
                                 Finding, Options, Part, Report)
from ftkit.errors import ConfigError, DataError
from ftkit.io import write_json

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- running

def parts_of(splits) -> list[Part]:
    """The task's splits as Parts (text, NER tokens joined by spaces, image or audio paths)."""
    parts = []
    for name, ex in splits.named().items():
        if hasattr(ex, "texts"):
            parts.append(Part(name, "text", ex.texts, ex.labels, ex))
        elif hasattr(ex, "tokens"):
            tags = None if ex.tags is None else [" ".join(t) for t in ex.tags]
            parts.append(Part(name, "ner", [" ".join(t) for t in ex.tokens], tags, ex))
        elif hasattr(ex, "transcripts"):  # AudioExamples: before images, both have paths
            if ex.labels is not None:  # audio classification
                parts.append(Part(name, "audio", ex.paths, ex.labels, ex))
            else:  # speech recognition: the transcript is the "label" conflicts compare
                parts.append(Part(name, "asr", ex.paths, ex.transcripts, ex))
        elif hasattr(ex, "paths"):
            parts.append(Part(name, "image", ex.paths, ex.labels, ex))
        else:
            raise DataError(f"the data doctor does not know the inputs of {type(ex).__name__}")
    return parts


def run_checks(ctx: Context, names=FAST) -> Report:
    started = time.perf_counter()
    findings, seconds = [], {}
    for name in names:
        tick = time.perf_counter()
        findings.append(CHECKS.get(name)(ctx))
        seconds[name] = round(time.perf_counter() - tick, 3)
    return Report(findings, _summary(ctx, findings, seconds, time.perf_counter() - started))


def _summary(ctx: Context, findings: list[Finding], seconds: dict, total: float) -> dict:
    by = {s: [f.name for f in findings if f.severity == s] for s in SEVERITIES}
    return {"task": ctx.task, "rows": {p.split: len(p) for p in ctx.parts},
            "errors": len(by["error"]), "warnings": len(by["warn"]), "ok": len(by["ok"]),
            "skipped": len(by["skipped"]), "failed": by["error"], "warned": by["warn"],
            "seconds": seconds, "total_seconds": round(total, 3)}


def fast_report(cfg, splits) -> Report:
    """The cheap checks `fit` runs on its prepared splits (no model, no tokenizer)."""
    ctx = Context(cfg.task, parts_of(splits), splits.labels, cfg, Options(label_noise=False),
                  record=splits.record, label_sets=splits.label_sets, numeric_target=splits.numeric_target)
    report = run_checks(ctx, FAST)
    report.summary["mode"] = "fast (ftkit fit)"
    return report


def refuse_leakage(report: Report) -> None:
    """Raised by `fit` before anything is written, unless --allow-leakage."""
    leak = report.get("leakage")
    if leak is None or leak.severity != "error":
        return
    shown = "; ".join(f"{d['rows'][0]['where']} = {d['rows'][1]['where']}" for d in leak.details[:3])
    raise DataError(f"{leak.count} validation/test rows also occur in another split ({shown}"
                    f"{'; ...' if len(leak.details) > 3 else ''}); pass --allow-leakage (cv, compare: --set "
                    "data.allow_leakage=true) to train anyway, "
                    "or remove the rows (ftkit doctor lists them)")


def diagnose(cfg, task, options: Optional[Options] = None, *, model: bool = True) -> Report:
    """Every check, for `ftkit doctor`: raw-file problems first, then the prepared splits.

    `task` is cfg.task's Task (tasks.get_task): it reads the files and, for label noise, builds and
    encodes the frozen model. The splits are read leniently (empty texts and unreadable images
    skipped) so one bad row does not hide everything else; the schema check reports those rows as
    `fit` would see them.
    """
    options = options or Options()
    if not 0 < options.near_threshold <= 1:
        raise ConfigError(f"--near-threshold {options.near_threshold}: a Jaccard similarity in (0, 1], e.g. 0.8")
    problems = scan_files(cfg, task)
    lenient = cfg.model_copy(update={"data": cfg.data.model_copy(update={"drop_empty": True, "skip_bad": True})})
    try:
        splits = task.prepare_data(lenient)
    except DataError as err:
        problems.append(Finding("schema", "error", 1, f"cannot load the data: {err}",
                                "fix this first; the other checks need loadable data"))
        report = run_checks(Context(cfg.task, [], [], cfg, options, problems=problems), ("schema",))
        report.summary["mode"] = "full (ftkit doctor): stopped at the schema check"
        return report
    ctx = Context(cfg.task, parts_of(splits), splits.labels, cfg, options, problems=problems,
                  scanned=True, record=splits.record, reader=task, tokenizer=_tokenizer(cfg, task) if model else None,
                  label_sets=splits.label_sets, numeric_target=splits.numeric_target)
    report = run_checks(ctx, FULL if options.label_noise and model else FAST)
    if not (options.label_noise and model):
        report.checks.append(skipped_label_noise("turned off (--no-label-noise)"))
        report.summary["skipped"] += 1
    report.summary["mode"] = "full (ftkit doctor)"
    return report


def _tokenizer(cfg, task):
    """The model's tokenizer (text tasks), to count truncated texts exactly; None if unavailable."""
    if not task.capabilities.truncation_check:
        return None
    try:
        from transformers import AutoTokenizer

        from ftkit.models.loading import quiet_transformers, resolve

        with quiet_transformers():
            return AutoTokenizer.from_pretrained(resolve(cfg.model.name).location,
                                                 trust_remote_code=cfg.model.trust_remote_code)
    except Exception as err:  # noqa: BLE001  (lengths fall back to an estimate; the check says so)
        log.warning("no tokenizer for %s (%s); text lengths are estimated from words", cfg.model.name, err)
        return None


# ---------------------------------------------------------------- output

def write(report: Report, path: str | Path) -> None:
    write_json(path, report.to_dict())


def table(report: Report):
    """A rich Table: check, status, count, examples, fix (the CLI prints it)."""
    from rich.table import Table

    colours = {"ok": "green", "warn": "yellow", "error": "bold red", "skipped": "dim"}
    out = Table("check", "status", "count", "what / examples", "fix", show_lines=True)
    for f in report.checks:
        shown = ", ".join(short(r) for r in f.examples[:SHOWN])
        more = f" (+{len(f.examples) - SHOWN} more)" if len(f.examples) > SHOWN else ""
        what = f.message + (f"\n{shown}{more}" if shown else "")
        out.add_row(f.name, f"[{colours[f.severity]}]{f.severity}[/]", str(f.count), what, f.fix)
    return out


def short(ref: dict) -> str:
    """'train:12' (a line or row) or 'train:cat/003.png' (an image of a class folder)."""
    row = ref["row"]
    if isinstance(row, str):
        p = Path(row)
        row = f"{p.parent.name}/{p.name}"
    return f"{ref['split']}:{row}"


# ---------------------------------------------------------------- fit

def check_data(cfg, splits) -> Report:
    """`fit`'s step 1: the fast checks; leaked splits stop the run unless data.allow_leakage."""
    report = fast_report(cfg, splits)
    if not cfg.data.allow_leakage:
        refuse_leakage(report)
    warned = report.summary["failed"] + report.summary["warned"]
    if warned:
        log.warning("data doctor: %s (doctor.json in the run folder; `ftkit doctor` for details)", ", ".join(
            f"{f.name} {f.count}" for f in report.checks if f.name in warned))
    return report
