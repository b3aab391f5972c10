"""`ftkit rank`: score candidate pretrained models on the user's training data before training.

Per candidate: frozen features once (cached), then three transferability scores (scores.py).
The combined rank is the mean of the per-score ranks (1 = best; ties share the mean rank), not a
mean of the scores: LogME is in nats per example and the accuracies are in [0, 1], so averaging
values would let one scale dominate; ranks are scale-free and one noisy score moves a candidate
by at most a third of its rank gap. Ties of the mean rank go to the higher probe accuracy (the
score closest to what training does). `--confirm-top K` then checks the order with short
fine-tunes under successive halving (halving.py).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ftkit.config import FitConfig
from ftkit.errors import ConfigError
from ftkit.io import write_json
from ftkit.models.loading import resolve
from ftkit.selection.features import RANDOM, candidate_config, candidate_features  # noqa: F401  (RANDOM: re-exported)
from ftkit.selection.halving import check_confirm, successive_halving
from ftkit.selection.scores import transferability

log = logging.getLogger(__name__)

SCORES = ("logme", "knn_accuracy", "probe_accuracy")
COMBINED = "mean of the per-score ranks (1 = best) over logme, knn_accuracy, probe_accuracy; ties: higher probe_accuracy"


def rank_models(cfg: FitConfig, models: list[str], *, confirm_top: int = 0, confirm_epochs: float = 1.0,
                runs: str | Path | None = None, out: str | Path | None = None, quiet: bool = False) -> dict:
    """Score every candidate, rank them, optionally confirm the top K by fine-tuning; returns (and
    writes to `out`, if given) the report."""
    check_confirm(cfg, confirm_top, len(models))
    _check(cfg, models)
    rows = order(add_ranks([score_candidate(cfg, name) for name in models]))
    report = {"task": cfg.task, "train": cfg.data.train, "n": rows[0]["n"], "classes": rows[0]["classes"],
              "combined": COMBINED, "models": rows}
    if confirm_top:
        folder = Path(runs) if runs else Path(out).with_name(Path(out).stem + "-runs") if out else Path("runs/rank")
        top = [row["candidate"] for row in rows[:confirm_top]]
        report["confirm"] = successive_halving(cfg, top, folder, epochs=confirm_epochs, quiet=quiet)
    if out is not None:
        write_json(Path(out), report)
    return report


def _check(cfg: FitConfig, models: list[str]) -> None:
    """Refuse before any forward pass: too few candidates, repeats, names that do not resolve."""
    if len(models) < 2:
        raise ConfigError("--models: name at least two candidates, comma-separated (e.g. minilm-l6,random:minilm-l6)")
    twice = sorted({m for m in models if models.count(m) > 1})
    if twice:
        raise ConfigError(f"--models: {', '.join(twice)} given more than once")
    for name in models:
        resolve(candidate_config(cfg, name).model.name)


def score_candidate(cfg: FitConfig, candidate: str) -> dict:
    """Features (cached) and the three scores of one candidate, with the seconds each took."""
    features, labels, info = candidate_features(candidate_config(cfg, candidate))
    scores = transferability(features, labels, seed=cfg.seed)
    log.info("%s: logme %.4f, knn %.4f, probe %.4f (%d x %d features, %s, %.1fs)", candidate, scores["logme"],
             scores["knn_accuracy"], scores["probe_accuracy"], info["n"], info["dim"], info["cache"], info["seconds"])
    return {"candidate": candidate, "model": info["model"], "init": info["init"], "n": scores["n"],
            "classes": scores["classes"], "dim": info["dim"], "scores": {k: scores[k] for k in SCORES},
            "seconds": {"features": info["seconds"], **scores["seconds"]}, "feature_cache": info["cache"]}


def add_ranks(rows: list[dict]) -> list[dict]:
    """Per-score ranks (1 = best, ties averaged) and their mean, in place."""
    from scipy.stats import rankdata

    for key in SCORES:
        ranks = rankdata([-row["scores"][key] for row in rows], method="average")
        for row, r in zip(rows, ranks):
            row.setdefault("ranks", {})[key] = float(r)
    for row in rows:
        row["mean_rank"] = round(float(np.mean([row["ranks"][k] for k in SCORES])), 4)
    return rows


def order(rows: list[dict]) -> list[dict]:
    """Best first by mean rank, then probe accuracy; `rank` is the position (1 = best)."""
    rows = sorted(rows, key=lambda row: (row["mean_rank"], -row["scores"]["probe_accuracy"]))
    for i, row in enumerate(rows, 1):
        row["rank"] = i
    return rows


def table(report: dict):
    """A rich table of the ranking (what `ftkit rank` prints); with --confirm-top, the validation
    metric of each candidate's last fine-tune and its rung."""
    from rich.table import Table

    title = f"{report['task']}: {report['n']} training rows, {report['classes']} classes"
    tuned = _last_finetunes(report.get("confirm"))
    grid = Table("rank", "model", "LogME", "kNN acc", "probe acc", "mean rank", "features", "scores", title=title)
    if tuned:
        grid.add_column("fine-tune (validation)")
    for row in report["models"]:
        s, sec = row["scores"], row["seconds"]
        cells = [str(row["rank"]), row["candidate"], f"{s['logme']:.4f}", f"{s['knn_accuracy']:.4f}",
                 f"{s['probe_accuracy']:.4f}", f"{row['mean_rank']:.2f}",
                 f"{sec['features']:.1f}s ({row['feature_cache']})", f"{sec['logme'] + sec['knn'] + sec['probe']:.2f}s"]
        grid.add_row(*cells, *([tuned.get(row["candidate"], "-")] if tuned else []))
    return grid


def _last_finetunes(confirm: dict | None) -> dict[str, str]:
    """candidate -> "accuracy 0.8024 (rung 0, 1 ep)" from the last rung it was trained in."""
    out: dict[str, str] = {}
    for rung in (confirm or {}).get("rungs", []):
        for r in rung["results"]:
            out[r["candidate"]] = f"{r['metric']} {r['value']:.4f} (rung {rung['rung']}, {rung['epochs']:g} ep)"
    return out
