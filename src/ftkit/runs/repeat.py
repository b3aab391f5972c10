"""Repeated fits for honest numbers: k-fold cross-validation (`ftkit cv`) and several seeds
(`ftkit fit --seeds N`).

Outer loops over the one `fit` with a derived config (no second training loop): each fold or
seed is an ordinary run folder inside OUT, and OUT/cv.json or OUT/seeds.json holds the
per-run test metrics with their mean, standard deviation and spread. A killed loop resumes:
finished runs are kept, the interrupted one continues from its checkpoint. With distributed.workers
N > 1 (`ftkit cv --workers-per-trial N`) each run trains on N Ray Train workers.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
from pathlib import Path

from ftkit import distributed
from ftkit.config import FitConfig
from ftkit.data.splits import split_seed
from ftkit.errors import ConfigError
from ftkit.evaluation.metrics import HEADLINE
from ftkit.io import write_json
from ftkit.locks import folder_lock
from ftkit.reporting import after_run

log = logging.getLogger(__name__)


def cross_validate(cfg: FitConfig, folds: int, out: Path, *, resume: bool = False, overwrite: bool = False,
                   quiet: bool = False, workers: int | None = None) -> dict:
    """Stratified k-fold over the training file: fold i is the test part of run OUT/fold-i
    (its validation part is split from the other folds as usual). Writes OUT/cv.json.
    `workers` (--workers-per-trial): each fold's fit on that many Ray Train workers."""
    if folds < 2:
        raise ConfigError(f"--folds {folds}: cross-validation needs at least 2 folds")
    cfg = distributed.per_run(cfg, workers)
    if workers is not None and distributed.wanted(cfg):  # what cannot be placed, named by its flag
        distributed.check_local(cfg, flag="--workers-per-trial")
    if cfg.data.test:
        raise ConfigError("ftkit cv makes its test parts from --train's folds; drop --test "
                          "(score a separate file on a fold's run with `ftkit eval`)")
    seed = split_seed(cfg)
    runs = []
    for fold in range(folds):
        data = cfg.data.model_copy(update={"cv_folds": folds, "cv_fold": fold, "split_seed": seed})
        runs.append((f"fold-{fold}", cfg.model_copy(update={"data": data, "out": str(out / f"fold-{fold}")})))
    summaries = _fit_each(runs, resume, overwrite, quiet)
    report = {"kind": "cross-validation", "folds": folds, "split_seed": seed, **_aggregate(summaries, runs)}
    write_json(out / "cv.json", report)
    after_run(out)  # report.html: per-fold scores and links to each fold's report
    return report


def repeat_seeds(cfg: FitConfig, seeds: int, out: Path, *, resume: bool = False, overwrite: bool = False,
                 quiet: bool = False) -> dict:
    """The same fit with seeds seed, seed+1, ...: weight init of the head, data order and dropout
    change; the held-out splits stay those of the first seed, so the spread is the training's
    own. Writes OUT/seeds.json."""
    if seeds < 2:
        raise ConfigError(f"--seeds {seeds}: repeating needs at least 2 seeds")
    data = cfg.data.model_copy(update={"split_seed": split_seed(cfg)})
    runs = [(f"seed-{s}", cfg.model_copy(update={"seed": s, "data": data, "out": str(out / f"seed-{s}")}))
            for s in range(cfg.seed, cfg.seed + seeds)]
    summaries = _fit_each(runs, resume, overwrite, quiet)
    report = {"kind": "seeds", "seeds": [c.seed for _, c in runs], "split_seed": data.split_seed,
              **_aggregate(summaries, runs)}
    write_json(out / "seeds.json", report)
    after_run(out)
    return report


def _fit_each(runs: list[tuple[str, FitConfig]], resume: bool, overwrite: bool, quiet: bool) -> list[dict]:
    with folder_lock(Path(runs[0][1].out).parent):  # one cv / --seeds per folder at a time
        return _fit_all(runs, resume, overwrite, quiet)


def _fit_all(runs: list[tuple[str, FitConfig]], resume: bool, overwrite: bool, quiet: bool) -> list[dict]:
    from ftkit.runs.precheck import precheck

    first = runs[0][1]  # the runs differ in seed or fold: bad data fails the first before torch loads
    if not (resume and (Path(first.out) / "summary.json").is_file()):
        precheck(first, resume=resume and (Path(first.out) / "config.yaml").is_file(), overwrite=overwrite)
    # --workers-per-trial N: every run on N Ray Train workers of one Ray instance, started once
    todo = any(not (Path(cfg.out) / "summary.json").is_file() for _, cfg in runs)
    team = distributed.cluster(first, quiet) if distributed.wanted(first) and todo else contextlib.nullcontext()
    with team:
        return [_fit_one(name, cfg, resume, overwrite, quiet) for name, cfg in runs]


def _fit_one(name: str, cfg: FitConfig, resume: bool, overwrite: bool, quiet: bool) -> dict:
    from ftkit.runs.fit import fit_run

    run_dir = Path(cfg.out)
    if resume and (run_dir / "summary.json").is_file():
        log.info("%s: already finished, reusing %s", name, run_dir)
    else:
        log.info("%s -> %s", name, run_dir)
        fit_run(cfg, resume=resume and (run_dir / "config.yaml").is_file(), overwrite=overwrite,
                quiet=quiet, command=["ftkit", name])
    return json.loads((run_dir / "summary.json").read_text())


def _aggregate(summaries: list[dict], runs: list[tuple[str, FitConfig]]) -> dict:
    """Per-run test metrics (numbers only) and, per metric, mean, std (n-1), min, max, spread."""
    per_run = [{"name": name, "run_dir": cfg.out, "n_test": s["metrics"].get("test", {}).get("n"),
                "test": _scalars(s["metrics"].get("test", {}))} for (name, cfg), s in zip(runs, summaries)]
    names = sorted(set.intersection(*(set(r["test"]) for r in per_run))) if per_run else []
    stats = {m: _stats([r["test"][m] for r in per_run]) for m in names}
    return {"metric": summaries[0]["best"]["metric"], "runs": per_run, "test": stats}


def _scalars(metrics: dict) -> dict:
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "n"}


def _stats(values: list[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "min": min(values), "max": max(values), "spread": max(values) - min(values),
            "values": values}


def table(report: dict) -> str:
    """A plain-text table: one row per run, then mean ± std."""
    metrics = [m for m in HEADLINE if m in report["test"]]
    lines = ["run        " + "  ".join(f"{m:>10}" for m in metrics)]
    for run in report["runs"]:
        lines.append(f"{run['name']:<10} " + "  ".join(f"{run['test'][m]:>10.4f}" for m in metrics))
    lines.append("mean ± std " + "  ".join(f"{report['test'][m]['mean']:>.4f}±{report['test'][m]['std']:.4f}"
                                          .rjust(10) for m in metrics))
    return "\n".join(lines)
