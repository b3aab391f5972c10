"""The sections of one run's report, each built from the run folder's files (None when absent)."""
from __future__ import annotations

from pathlib import Path

from ftkit.reporting import plots
from ftkit.reporting.html import (
    Section,
    bullets,
    cards,
    esc,
    fmt,
    image,
    key_values,
    link,
    table,
    verdict,
)
from ftkit.reporting.sources import (
    href,
    inner,
    read_csv,
    read_json,
    read_jsonl,
    scalars,
)

SEVERITY_ORDER = {"error": 0, "warn": 1, "skipped": 2, "ok": 3}


def run_page(folder: Path) -> tuple[str, str, list[Section]]:
    """-> (title, subtitle, sections) of a finished run folder."""
    s = read_json(folder / "summary.json")
    records = read_jsonl(folder / "metrics.jsonl")
    doctor = read_json(folder / "doctor.json")
    built = [overview(s), metrics_table(s), transcripts(s, folder), curves(s, records), lr_schedule(records),
             confusion(s, folder),
             per_class(s), calibration(s), groups(s), data(s, doctor), overfitting(s), retention(s),
             baselines(s, folder), advice(s, doctor), files(folder)]
    title = f"{s.get('model', '?')} · {s.get('strategy', '?')} · {s.get('task', '?')}"
    return title, f"ftkit run {folder.name}", [b for b in built if b is not None]


def headline(s: dict) -> tuple[str | None, str | None, float | None, list | None]:
    """(split, metric, value, ci) of the number a reader looks for first: test, else validation."""
    metric = (s.get("best") or {}).get("metric") or "accuracy"
    metric = "accuracy" if metric == "loss" else metric
    for split in ("test", "validation"):
        m = (s.get("metrics") or {}).get(split) or {}
        if metric in m:
            return split, metric, m[metric], (m.get("ci") or {}).get(metric)
    return None, metric, None, None


def _ci(value, ci) -> str:
    return fmt(value) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "")


def overview(s: dict) -> Section:
    split, metric, value, ci = headline(s)
    params, timing = s.get("params") or {}, s.get("timing") or {}
    tiles = cards([(f"{split} {metric}" if split else metric, value),
                   ("trainable params", params.get("trainable")), ("train seconds", timing.get("train_seconds")),
                   ("peak memory MB", s.get("peak_memory_mb"))])
    share = params.get("trainable_share")
    details = key_values([
        ("task", s.get("task")), ("base model", s.get("model")), ("source", s.get("model_source")),
        ("initialisation", s.get("init")), ("strategy", s.get("strategy")),
        ("trainable / total parameters", f"{fmt(params.get('trainable'))} / {fmt(params.get('total'))}"
         + (f" ({100 * share:.1f}%)" if share is not None else "") if params else None),
        (f"{split} {metric} (95% CI)" if split else None, _ci(value, ci) if value is not None else None),
        ("best validation", f"{fmt((s.get('best') or {}).get('value'))} at epoch "
                            f"{fmt((s.get('best') or {}).get('epoch'))}" if s.get("best") else None),
        ("stopped", (s.get("stopped") or {}).get("reason")), ("seed", s.get("seed")),
        ("device / precision", f"{s.get('device')} / {s.get('precision')}" if s.get("device") else None),
        ("steps / samples", f"{fmt(timing.get('steps'))} / {fmt(timing.get('samples'))}" if timing else None),
        ("labels", ", ".join(map(str, s.get("labels") or [])) or None)])
    return Section("overview", "Overview", tiles + details)


def metrics_table(s: dict) -> Section | None:
    metrics = s.get("metrics") or {}
    splits = [name for name in ("validation", "test_before", "test") if metrics.get(name)]
    if not splits:
        return None
    names = list(dict.fromkeys(k for name in splits for k in scalars(metrics[name])))
    rows = [[name] + [_ci(metrics[sp][name], (metrics[sp].get("ci") or {}).get(name)) if name in metrics[sp]
                      else "-" for sp in splits] for name in names]
    rows.append(["examples"] + [fmt(metrics[sp].get("n")) for sp in splits])
    ci = next((metrics[sp]["ci"] for sp in splits if metrics[sp].get("ci")), None)
    note = (f'<p class="muted">[low, high]: {100 * ci.get("level", 0.95):.0f}% bootstrap interval over '
            f'{esc(ci.get("unit", "example"))}s ({fmt(ci.get("n_boot"))} resamples).</p>' if ci else "")
    heads = [{"test_before": "test, before fine-tuning"}.get(sp, sp) for sp in splits]
    return Section("metrics", "Metrics", table(["metric", *heads], rows) + note)


def transcripts(s: dict, folder: Path) -> Section | None:
    """Speech recognition: the zero-shot verdict and the test clips the model still gets most wrong."""
    frame = read_csv(folder / "predictions.csv")
    if frame is None or not {"reference", "transcript", "wer"} <= set(frame.columns):
        return None
    for column in {"reference", "transcript", "zero_shot"} & set(frame.columns):  # an empty one reads as NaN
        frame[column] = frame[column].astype(object).where(frame[column].notna(), "")
    worst = frame.sort_values("wer", ascending=False, kind="stable").head(12)
    has_before = "zero_shot" in frame.columns
    rows = [[r["audio"].rsplit("/", 1)[-1], r["reference"], *([r["zero_shot"]] if has_before else []),
             r["transcript"], fmt(r["wer"])] for _, r in worst.iterrows()]
    exact = int((frame["wer"] == 0).sum())
    head = verdict((s.get("zero_shot") or {}).get("verdict"))
    body = (head + f"<p>{exact} of {len(frame)} test clips transcribed without a word error; the worst:</p>"
            + table(["clip", "reference", *(["zero-shot"] if has_before else []), "fine-tuned", "WER"], rows))
    return Section("transcripts", "Transcripts (test)", body)


def _evaluations(s: dict, records: list[dict]) -> list[dict]:
    """Per evaluation {"step", "epoch", "validation", "train"}: summary.history, else metrics.jsonl."""
    if s.get("history"):
        return s["history"]
    by_step: dict = {}
    for r in records:
        if r.get("split") in ("validation", "train_eval"):
            key = "validation" if r["split"] == "validation" else "train"
            entry = by_step.setdefault(r["step"], {"step": r["step"], "epoch": r.get("epoch")})
            entry[key] = {k: v for k, v in r.items() if k not in ("step", "epoch", "split")}
    return list(by_step.values())


def curves(s: dict, records: list[dict]) -> Section | None:
    train = [r for r in records if r.get("split") == "train" and "loss" in r and "step" in r]
    uri = plots.learning_curves(train, _evaluations(s, records), (s.get("best") or {}).get("metric", "loss"))
    if uri is None:
        return None
    note = ('<p class="muted">Training batches: the loss of each logged step (dropout on). Train (eval mode): '
            'a fixed subset of the training data scored like validation, so the two are comparable.</p>')
    return Section("curves", "Learning curves", image(uri, "learning curves") + note)


def lr_schedule(records: list[dict]) -> Section | None:
    points = [(r["step"], r["lr"]) for r in records if r.get("split") == "train" and "lr" in r and "step" in r]
    uri = plots.lr_schedule(*zip(*points)) if len(points) >= 2 else None
    return Section("lr", "Learning-rate schedule", image(uri, "learning-rate schedule")) if uri else None


def _split_metrics(s: dict, key: str) -> tuple[str | None, dict | None]:
    for split in ("test", "validation"):
        m = (s.get("metrics") or {}).get(split) or {}
        if m.get(key):
            return split, m
    return None, None


def confusion(s: dict, folder: Path) -> Section | None:
    split, m = _split_metrics(s, "confusion_matrix")
    if m is not None:
        matrix, labels = m["confusion_matrix"], m.get("labels") or s.get("labels") or []
    else:
        matrix, labels, split = *_from_predictions(folder / "predictions.csv"), "test"
    if not matrix:
        return None
    uri = plots.confusion(matrix, [str(x) for x in labels])
    rows = [[str(labels[i])] + list(map(int, row)) for i, row in enumerate(matrix)]
    grid = table(["true \\ predicted", *map(str, labels)], rows) if len(labels) <= 12 else ""
    return Section("confusion", f"Confusion matrix ({split})", image(uri, "confusion matrix") + grid)


def _from_predictions(path: Path) -> tuple[list | None, list]:
    """A confusion matrix from predictions.csv (classification: label, predicted columns)."""
    frame = read_csv(path)
    if frame is None or not {"label", "predicted"} <= set(frame.columns):
        return None, []
    labels = sorted(set(frame["label"].astype(str)) | set(frame["predicted"].astype(str)))
    index = {name: i for i, name in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for true, pred in zip(frame["label"].astype(str), frame["predicted"].astype(str)):
        matrix[index[true]][index[pred]] += 1
    return matrix, labels


def per_class(s: dict) -> Section | None:
    key = "per_type" if _split_metrics(s, "per_type")[1] else "per_class"
    split, m = _split_metrics(s, key)
    if m is None:
        return None
    scores = m[key]
    rows = [[name, v.get("precision"), v.get("recall"), v.get("f1"), v.get("support")] for name, v in scores.items()]
    title = "Per-entity-type metrics" if key == "per_type" else "Per-class metrics"
    body = table(["entity type" if key == "per_type" else "class", "precision", "recall", "f1", "support"], rows)
    return Section("per-class", f"{title} ({split})", body + image(plots.per_class(scores), title))


def calibration(s: dict) -> Section | None:
    split, m = _split_metrics(s, "calibration")
    if m is None:
        return None
    cal = m["calibration"]
    body = image(plots.reliability(cal.get("bins") or [], cal.get("ece")), "reliability diagram")
    body += key_values([("expected calibration error (ECE)", cal.get("ece")),
                        ("ECE before temperature scaling", cal.get("ece_before")),
                        ("temperature (fitted on validation)", cal.get("temperature"))])
    body += ('<p class="muted">Bars: accuracy of the predictions whose top probability falls in each bin. '
             'Bars below the diagonal: the model is over-confident there.</p>')
    return Section("calibration", f"Calibration ({split})", body)


def groups(s: dict) -> Section | None:
    g = ((s.get("metrics") or {}).get("test") or {}).get("groups")
    if not g or not g.get("per_group"):
        return None
    rows = [[name, v.get("n"), v.get("accuracy"), v.get("macro_f1"), "yes" if v.get("too_small") else ""]
            for name, v in g["per_group"].items()]
    gap = g.get("largest_gap")
    text = (f"Largest gap: {gap['metric']} {100 * gap['gap']:.1f} points between {gap['best']} and {gap['worst']}"
            if gap else None)
    return Section("groups", f"Test metrics per {g.get('column', 'group')}",
                   table([g.get("column", "group"), "n", "accuracy", "macro_f1", "too small"], rows) + verdict(text))


def data(s: dict, doctor: dict | None) -> Section | None:
    rows = (s.get("data") or {}) or ((doctor or {}).get("summary") or {}).get("rows") or {}
    body = table(["split", "examples"], [[k, v] for k, v in rows.items()]) if rows else ""
    checks = sorted((doctor or {}).get("checks") or [], key=lambda c: SEVERITY_ORDER.get(c.get("severity"), 9))
    if checks:
        mode = ((doctor or {}).get("summary") or {}).get("mode")
        body += f"<h3>Data doctor{esc(f': {mode}' if mode else '')}</h3>"
        body += table(["check", "result", "count", "finding", "fix"],
                      [[c.get("name"), f'<span class="sev-{esc(c.get("severity"))}">{esc(c.get("severity"))}</span>',
                        c.get("count"), c.get("message"), c.get("fix") or ""] for c in checks], raw={1})
    return Section("data", "Data and doctor findings", body) if body else None


def overfitting(s: dict) -> Section | None:
    o = s.get("overfitting")
    if not o:
        return None
    metric = o.get("metric", "")
    rows = [[name, p.get("epoch"), p.get("train_loss"), p.get("validation_loss"), p.get(f"train_{metric}"),
             p.get(f"validation_{metric}"), p.get("gap")] for name, p in (("best", o.get("best")), ("last", o.get("last")))
            if p]
    body = verdict(o.get("verdict"))
    if rows:
        body += table(["point", "epoch", "train loss", "val loss", f"train {metric}", f"val {metric}", "gap"], rows)
    return Section("overfitting", "Overfitting", body)


def retention(s: dict) -> Section | None:
    r = s.get("retention")
    if not r or r.get("before") is None or r.get("after") is None:
        return None
    measure = r.get("measure", "original task")
    body = image(plots.retention(float(r["before"]), float(r["after"]), measure), "retention before/after")
    body += verdict(r.get("verdict"))
    body += key_values([("measure", measure), ("before / after", f"{fmt(r['before'])} / {fmt(r['after'])}"),
                        ("retained", f"{fmt(r.get('retained_pct'), 1)}%" if r.get("retained_pct") is not None else None),
                        ("representation similarity (CKA)", r.get("cka")), ("kind", r.get("kind")),
                        ("reference data", r.get("reference")), ("examples", r.get("n")),
                        ("labelled", r.get("labelled")), ("rehearsal", r.get("rehearsal"))])
    return Section("retention", "Retention of the pretrained model", body)


def baselines(s: dict, folder: Path) -> Section | None:
    b = {k: v for k, v in (s.get("baselines") or {}).items() if isinstance(v, dict)}
    if not b:
        return None
    first = next(iter(b.values()))
    rows = [[_baseline_link(folder, name, v), v.get("value"), v.get("finetuned_value"), v.get("gain_points"),
             v.get("train_seconds"), v.get("finetuned_train_seconds"), v.get("time_ratio"), v.get("seconds_to_match")]
            for name, v in b.items()]
    metric = f"{first.get('split', '')} {first.get('metric', '')}".strip()
    body = verdict((s.get("baselines") or {}).get("verdict"))
    body += table(["baseline", metric, "fine-tuned", "gain (points)", "train s", "fine-tuned train s",
                   "time ratio", "fine-tuned s to match"], rows, raw={0})
    names = ["fine-tuned", *b]
    values = [first.get("finetuned_value"), *(v.get("value") for v in b.values())]
    seconds = [first.get("finetuned_train_seconds"), *(v.get("train_seconds") for v in b.values())]
    body += image(plots.bars([(metric, names, values), ("train seconds", names, seconds)], highlight="fine-tuned"),
                  "fine-tuned vs baselines")
    return Section("baselines", "Baselines: was fine-tuning worth it?", body)


def _baseline_link(folder: Path, name: str, entry: dict) -> str:
    """The baseline's own report (RUN_DIR/baselines/NAME/report.html) when it has one."""
    run = inner(folder / "baselines", entry.get("run_dir"), name)
    report = run / "report.html" if run is not None else None
    return link(href(folder, report), name) if report is not None and report.is_file() else esc(name)


def advice_items(s: dict, doctor: dict | None) -> list[str]:
    """The fixes and advice the run produced, in one list."""
    items = [f"{c['name']}: {c['fix']}" for c in (doctor or {}).get("checks") or []
             if c.get("severity") in ("error", "warn") and c.get("fix")]
    over = (s.get("overfitting") or {}).get("verdict") or ""
    if over and not over.startswith("no sign"):
        items.append(over)
    for key in ("retention", "baselines"):
        if (s.get(key) or {}).get("verdict"):
            items.append(f"{key}: {s[key]['verdict']}")
    cal = ((s.get("metrics") or {}).get("test") or {}).get("calibration") or {}
    if cal.get("ece") is not None and cal["ece"] > 0.05 and cal.get("temperature") is None:
        items.append(f"calibration: ECE {cal['ece']:.3f}; --set eval.calibrate=true fits a temperature on the "
                     "validation split so probabilities match accuracy better")
    return items


def advice(s: dict, doctor: dict | None) -> Section | None:
    items = advice_items(s, doctor)
    return Section("advice", "Advice", bullets(items)) if items else None


def files(folder: Path) -> Section | None:
    names = ["summary.json", "config.yaml", "metrics.jsonl", "predictions.csv", "doctor.json", "splits.json",
             "model/README.md"]
    present = [link(n, n) for n in names if (folder / n).is_file()]
    return Section("files", "Files", bullets(present, raw=True)) if present else None
