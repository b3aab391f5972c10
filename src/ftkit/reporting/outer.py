"""Report sections of outer-loop folders (compare, cv / seeds, tune, auto): the table across runs,
its plots, and links to each inner run's own report.html."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ftkit.evaluation.metrics import HEADLINE
from ftkit.reporting import plots
from ftkit.reporting.html import (
    Section,
    bullets,
    esc,
    fmt,
    image,
    key_values,
    link,
    table,
    verdict,
)
from ftkit.reporting.sources import href, inner, read_csv, read_json, scalars

# (folder, run folder) -> the inner run's report, written when missing; set by the package so
# that this module does not import it back.
EnsureReport = Callable[[Path], Path | None]


def _run_link(folder: Path, run: Path | None, ensure: EnsureReport, text: str) -> str:
    if run is None:
        return esc(text)
    report = ensure(run)
    return link(href(folder, report), text) if report is not None else esc(text)


# ---------------------------------------------------------------- compare

def compare_page(folder: Path, ensure: EnsureReport) -> tuple[str, str, list[Section]]:
    rows = read_json(folder / "comparison.json") or []
    runs = [inner(folder, r.get("run_dir"), r.get("strategy")) for r in rows]
    summaries = [read_json(run / "summary.json") if run else None for run in runs]
    metric = rows[0].get("metric", "") if rows else ""
    grid = [[_run_link(folder, run, ensure, r.get("strategy", "?")), r.get("test"), r.get("validation"), r.get("lr"),
             r.get("train_seconds"), r.get("trainable_params"), r.get("peak_memory_mb"),
             r.get("retained_pct", _retained(s))]
            for r, run, s in zip(rows, runs, summaries)]
    names = [r.get("strategy", "?") for r in rows]
    best = max((r for r in rows if r.get("test") is not None), key=lambda r: r["test"], default=None)
    body = verdict(f"Best test {metric}: {best['strategy']} ({fmt(best['test'])})" if best else None)
    body += table(["strategy (report)", f"test {metric}", f"validation {metric}", "lr", "train s",
                   "trainable params", "peak MB", "retained %"], grid, raw={0})
    panels = [(f"test {metric}", names, [r.get("test") for r in rows]),
              ("train seconds", names, [r.get("train_seconds") for r in rows]),
              ("trainable parameters", names, [r.get("trainable_params") for r in rows])]
    body += image(plots.bars(panels, highlight=best["strategy"] if best else None, xlim_from_data=True),
                  "strategy comparison")
    sections = [Section("comparison", "Strategy comparison", body)]
    sections += _retention_section(names, summaries)
    title = f"Strategy comparison · {len(rows)} strategies"
    return title, f"ftkit compare {folder.name}", sections


def _retained(summary: dict | None) -> float | None:
    return ((summary or {}).get("retention") or {}).get("retained_pct")


def _retention_section(names: list[str], summaries: list[dict | None]) -> list[Section]:
    """Forgetting per strategy: what each mitigation (freezing, LoRA, L2-SP, rehearsal) kept."""
    kept = [(n, (s or {}).get("retention")) for n, s in zip(names, summaries) if (s or {}).get("retention")]
    if not kept:
        return []
    rows = [[n, r.get("measure"), r.get("before"), r.get("after"), r.get("retained_pct"), r.get("cka"),
             r.get("verdict")] for n, r in kept]
    body = table(["strategy", "measure", "before", "after", "retained %", "CKA", "verdict"], rows)
    body += image(plots.bars([("retained %", [n for n, _ in kept], [r.get("retained_pct") for _, r in kept])]),
                  "retention per strategy")
    return [Section("retention", "Retention per strategy", body)]


# ---------------------------------------------------------------- cv / seeds

def repeat_page(folder: Path, ensure: EnsureReport) -> tuple[str, str, list[Section]]:
    name = "cv.json" if (folder / "cv.json").is_file() else "seeds.json"
    report = read_json(folder / name) or {}
    metric, stats, runs = report.get("metric", ""), report.get("test") or {}, report.get("runs") or []
    metrics = [m for m in HEADLINE if m in stats]
    rows = [[_run_link(folder, inner(folder, r.get("run_dir"), r.get("name")), ensure, r.get("name", "?")),
             r.get("n_test"), *(r.get("test", {}).get(m) for m in metrics)] for r in runs]
    rows.append(["mean ± std", None, *(f"{fmt(stats[m]['mean'])} ± {fmt(stats[m]['std'])}" for m in metrics)])
    rows.append(["spread (max - min)", None, *(stats[m].get("spread") for m in metrics)])
    body = table(["run (report)", "test n", *metrics], rows, raw={0})
    shown = metric if metric in stats else (metrics[0] if metrics else None)
    if shown:
        body += image(plots.spread([r.get("name", "?") for r in runs], stats[shown].get("values") or [], shown),
                      "test score per run")
    if report.get("kind") == "cross-validation":
        title, what = f"Cross-validation · {report.get('folds')} folds", "Folds"
    else:
        title, what = f"Seeds · {len(runs)} runs", "Seeds"
    note = key_values([("split seed", report.get("split_seed")), ("seeds", report.get("seeds"))])
    return title, f"ftkit {'cv' if name == 'cv.json' else 'fit --seeds'} {folder.name}", [
        Section("runs", what, body + note)]


# ---------------------------------------------------------------- tune

def tune_page(folder: Path, ensure: EnsureReport) -> tuple[str, str, list[Section]]:
    report = read_json(folder / "tune.json") or {}
    metric, best, counts = report.get("metric", ""), report.get("best") or {}, report.get("trials") or {}
    summary = key_values([("metric", f"validation {metric} ({report.get('direction')})"),
                          ("trials", ", ".join(f"{k} {v}" for k, v in counts.items() if k != "interrupted_this_session")),
                          ("seconds", report.get("seconds")), ("time budget (s)", report.get("time_budget_seconds")),
                          ("executor", report.get("executor")),
                          ("best trial", f"{best.get('trial')}: {fmt(best.get('value'))}" if best else None)])
    sections = [Section("study", "Study", summary)]
    if best.get("params"):
        imp = report.get("importances") or {}
        rows = [[k, v, imp.get(k)] for k, v in best["params"].items()]
        body = table(["parameter", "best value", "importance"], rows)
        if imp:
            body += image(plots.bars([("importance", list(imp), list(imp.values()))]), "parameter importances")
        body += verdict(f"importances: {report['importances_note']}" if report.get("importances_note") else None)
        sections.append(Section("best", "Best configuration", body))
    sections += _trials_sections(folder, report, metric, ensure)
    refit = report.get("refit")
    if refit:
        run = inner(folder, refit.get("run_dir"), "best")
        rows = [[k, v] for k, v in scalars(refit.get("test") or {}).items()]
        body = f"<p>Trial {esc(refit.get('trial'))} refit{' on train + validation' if refit.get('on_all') else ''}: "
        body += _run_link(folder, run, ensure, "its report") + "</p>" + table(["test metric", "value"], rows)
        sections.append(Section("refit", "Refit of the best configuration", body))
    return f"Hyperparameter study · {counts.get('total', 0)} trials", f"ftkit tune {folder.name}", sections


def _trials_sections(folder: Path, report: dict, metric: str, ensure: EnsureReport) -> list[Section]:
    frame = read_csv(folder / "trials.csv")
    if frame is None or not len(frame):
        return []
    frame = frame.astype(object).where(frame.notna(), None)
    records = frame.to_dict(orient="records")
    uri = plots.trials(records, metric, report.get("direction", "maximize") == "maximize")
    params = [c for c in frame.columns if c.startswith("param:")]
    rows = [[_run_link(folder, inner(folder, r.get("run_dir"), f"trial-{int(r['trial']):04d}"), ensure,
                       str(r["trial"])), r.get("state"), r.get("value"), r.get("seconds"),
             *(r.get(p) for p in params)] for r in records]
    body = image(uri, "trials") + table(["trial (report)", "state", f"validation {metric}", "seconds",
                                         *(p[len("param:"):] for p in params)], rows, raw={0})
    return [Section("trials", "Trials", body)]


# ---------------------------------------------------------------- auto

def auto_page(folder: Path, ensure: EnsureReport) -> tuple[str, str, list[Section]]:
    report = read_json(folder / "auto.json") or {}
    rec, final = report.get("recommendation") or {}, report.get("final") or {}
    stages = report.get("stages") or {}
    body = key_values([("model", report.get("model")), ("strategy", report.get("strategy")),
                       ("time budget (s)", report.get("time_budget_seconds")), ("seconds used", report.get("seconds")),
                       ("within budget", report.get("within_budget"))])
    body += table(["stage", "seconds", "ended at (s)"], [[k, v.get("seconds"), v.get("ended_at")]
                                                         for k, v in stages.items() if isinstance(v, dict)])
    sections = [Section("pipeline", "Pipeline", body)]
    if rec:
        sections.append(Section("advice", "Advice", verdict(f"{rec.get('action', '')}: {rec.get('strategy', '')}")
                                + bullets(rec.get("reasons") or [])
                                + (f"<p>Command: <code>{esc(rec['command'])}</code></p>" if rec.get("command") else "")))
    doctor = report.get("doctor") or {}
    if doctor:
        sections.append(Section("doctor", "Data doctor", key_values([
            ("errors", doctor.get("errors")), ("warnings", doctor.get("warnings")),
            ("failed", ", ".join(doctor.get("failed") or []) or None),
            ("warned", ", ".join(doctor.get("warned") or []) or None)])))
    sections.append(_auto_final(folder, report, final, ensure))
    return "ftkit auto", f"ftkit auto {folder.name}", sections


def _auto_final(folder: Path, report: dict, final: dict, ensure: EnsureReport) -> Section:
    run = inner(folder, report.get("final_run"), "final")
    ci = final.get("test_ci") or {}
    rows = [[k, v, f"[{fmt(ci[k][0])}, {fmt(ci[k][1])}]" if k in ci else ""]
            for k, v in (final.get("test") or {}).items()]
    body = f"<p>{_run_link(folder, run, ensure, 'The final run’s report')}</p>"
    tune = folder / "tune"
    if (tune / "tune.json").is_file():
        body += f"<p>{_run_link(folder, tune, ensure, 'The tuning study’s report')}</p>"
    body += table(["test metric", "value", "95% CI"], rows)
    body += key_values([(k, v) for k, v in (final.get("hyperparameters") or {}).items()])
    return Section("final", "Final model", body)
