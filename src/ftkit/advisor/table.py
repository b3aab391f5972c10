"""The advice as rich renderables (the CLI prints them): facts, strategies, recommendation."""
from __future__ import annotations


def render(advice: dict) -> list:
    from rich.table import Table
    from rich.text import Text

    out = [Text(_facts_line(advice))]
    ranking = advice["models"]
    if ranking.get("available") and ranking["models"]:
        out.append(_models_table(ranking["models"]))
    elif not ranking.get("available"):
        out.append(Text(f"transferability: {ranking.get('reason')}", style="dim"))
    table = Table(title=f"Strategies for {advice['model']} (estimated on {advice['machine']['device']}, "
                        f"{advice['machine']['precision']})")
    for column in ("strategy", "est. total", "est. train", "sec/step", "est. peak memory", "trainable params",
                   "fits"):
        table.add_column(column, justify="left" if column in ("strategy", "fits") else "right")
    fits = advice["recommendation"]["fits"]
    for name, row in advice["strategies"].items():
        if "error" in row:
            table.add_row(name, "-", "-", "-", "-", "-", f"failed: {row['error']}")
            continue
        step = row["estimate"]["seconds_per_step"]
        trials = row["trials_within_budget"]
        table.add_row(name, _duration(row["total_seconds"]), _duration(row["train_seconds"]),
                      f"{step:.3f}" if step else "-", f"{row['peak_memory_mb']:.0f} MB",
                      f"{row['trainable_params']:,} / {row['total_params']:,}",
                      fits.get(name, "") + (f" ({trials} trials)" if trials else ""))
    out.append(table)
    out.append(Text(_recommendation(advice["recommendation"]), style="bold"))
    return out


def _facts_line(advice: dict) -> str:
    data, model = advice["data"], advice["model_facts"]
    sizes = ", ".join(f"{n} {name}" for name, n in data["n"].items())
    line = f"data: {sizes}" + (f"; {data['n_classes']} classes" if data["n_classes"] else "")
    if "imbalance_ratio" in data:
        line += f" (largest/smallest {data['imbalance_ratio']:g})"
    if "audio_seconds" in data:
        line += f"; {data['audio_seconds']['train'] / 60:.1f} min of training audio; transcript"
    if "lengths" in data and data["lengths"].get("train"):
        t = data["lengths"]["train"]
        line += f"; tokens mean {t['mean']:g}, p95 {t['p95']}, {t['truncated']:.1%} cut at max_length"
    if "image_size" in data:
        line += f"; images {data['image_size']} px"
    return line + f"\nmodel: {model['name']}, {model['total_params']:,} parameters ({model['size_mb']:g} MB)"


def _models_table(rows: list):
    from rich.table import Table

    table = Table(title="Transferability (frozen features, best first)")
    for column in ("model", "LogME", "kNN acc.", "probe acc."):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in rows:
        table.add_row(str(r["model"]), *(f"{r[k]:.3f}" if r.get(k) is not None else "-"
                                          for k in ("logme", "knn_accuracy", "probe_accuracy")))
    return table


def _recommendation(rec: dict) -> str:
    head = {"fine-tune": f"Recommendation: fine-tune with {rec['strategy']}",
            "linear-probe": "Recommendation: a linear probe is enough",
            "don't fine-tune": "Recommendation: don't fine-tune"}[rec["action"]]
    if rec["epochs"] is not None and rec["strategy"]:
        head += f" ({rec['epochs']:g} epochs)"
    lines = [head] + [f"  - {reason}" for reason in rec["reasons"]]
    if rec.get("command"):
        lines.append(f"  run: {rec['command']}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
