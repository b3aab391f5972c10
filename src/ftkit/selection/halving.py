"""`--confirm-top K`: short fine-tunes of the K best-ranked candidates under successive halving.

Rung 0 fine-tunes every candidate for `epochs`; the better half (rounded up) goes on to the next
rung with `factor` times the epochs, until one is left (the winner is not trained further: its
place in the order is settled). Each rung is a fresh `fit` from the pretrained weights (an outer
loop over the one training loop) with score_test=False and save_model=False: the test split is
never looked at and no weights are kept. Candidates are compared on the validation metric; the
fine-tune order is: furthest rung reached, then score at that rung.

Runs go in-process, one after another: ranking compares validation scores, not speed or peak
memory, so a fresh process per run (as `compare` uses) would only add a torch import each.
"""
from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

from ftkit.config import FitConfig
from ftkit.errors import ConfigError
from ftkit.runs.rundir import RunDir
from ftkit.selection.features import candidate_config

log = logging.getLogger(__name__)


def check_confirm(cfg: FitConfig, top: int, n_models: int) -> None:
    """Refuse before any work: the fine-tunes need something to compare and validation data."""
    if top == 0:
        return
    if top < 2 or top > n_models:
        raise ConfigError(f"--confirm-top {top}: use 0 (off) or 2..{n_models} (the number of --models)")
    if not cfg.data.validation and cfg.data.validation_size == 0:
        raise ConfigError("--confirm-top compares fine-tunes on validation data: pass --validation PATH, or keep "
                          "--set data.validation_size above 0")


def successive_halving(cfg: FitConfig, candidates: list[str], folder: Path, *, epochs: float = 1.0,
                       factor: int = 3, quiet: bool = False) -> dict:
    """Fine-tune `candidates` (best transferability first) in rungs; report whether the order held."""
    survivors, rungs, reached = list(candidates), [], {}
    budget, rung = float(epochs), 0
    while len(survivors) > 1:
        results = [finetune(cfg, name, folder, rung, budget, candidates.index(name), quiet) for name in survivors]
        results.sort(key=lambda r: r["score"], reverse=True)
        for r in results:
            reached[r["candidate"]] = (rung, r["score"])
        keep = math.ceil(len(survivors) / 2)
        survivors = [r["candidate"] for r in results[:keep]]
        rungs.append({"rung": rung, "epochs": budget, "results": results, "kept": survivors})
        log.info("rung %d (%g epochs): %s go on", rung, budget, ", ".join(survivors))
        budget, rung = budget * factor, rung + 1
    finetuned = sorted(candidates, key=lambda c: reached[c], reverse=True)
    return {"candidates": candidates, "epochs": epochs, "factor": factor, "folder": str(folder), "rungs": rungs,
            "finetune_order": finetuned, **agreement(candidates, finetuned)}


def agreement(predicted: list[str], observed: list[str]) -> dict:
    """Top-1 agreement and Spearman's rho between the two orders of the same candidates."""
    from scipy.stats import spearmanr

    rho = float(spearmanr(range(len(predicted)), [observed.index(c) for c in predicted]).statistic)
    top1 = predicted[0] == observed[0]
    return {"top1_agrees": top1, "spearman": round(rho, 4), "held": top1,
            "verdict": (f"ranking held: {observed[0]} is best after fine-tuning too" if top1 else
                        f"ranking did not hold: {observed[0]} fine-tuned best, transferability said {predicted[0]}")
            + f" (Spearman {rho:+.2f} over {len(predicted)})"}


def finetune(cfg: FitConfig, candidate: str, folder: Path, rung: int, epochs: float, position: int,
             quiet: bool) -> dict:
    """One short fine-tune of a candidate, reused when an identical finished one is in its folder."""
    from ftkit.runs.fit import fit_run

    base = candidate_config(cfg, candidate)
    out = folder / f"{position + 1}-{slug(candidate)}" / f"rung-{rung}"
    train = base.train.model_copy(update={"epochs": epochs})
    run_cfg = base.model_copy(update={"train": train, "out": str(out)}, deep=True)
    if not _finished_alike(out, run_cfg):
        log.info("fine-tuning %s for %g epoch(s) -> %s", candidate, epochs, out)
        fit_run(run_cfg, overwrite=True, quiet=quiet, command=["ftkit", "rank", "--confirm-top"],
                score_test=False, save_model=False)
    return read_result(candidate, out)


def read_result(candidate: str, out: Path) -> dict:
    """The validation metric of a finished run; ties broken by the lower validation loss."""
    summary = json.loads((out / "summary.json").read_text())
    metric = summary["best"]["metric"]
    validation = summary["metrics"]["validation"]
    value = validation[metric]
    score = (-value if metric == "loss" else value, -validation.get("loss", 0.0))
    return {"candidate": candidate, "metric": metric, "value": value, "score": score,
            "validation_loss": validation.get("loss"), "train_seconds": summary["timing"]["train_seconds"],
            "run_dir": str(out)}


def _finished_alike(out: Path, cfg: FitConfig) -> bool:
    """A finished run of the same config (rank was killed and run again): reuse it."""
    run = RunDir(out)
    if not run.finished() or not run.config.is_file():
        return False
    saved = run.saved_config()
    mine = cfg.model_copy(update={"out": str(run.path)}).model_dump(mode="json")
    if mine["train"]["lr"] is None:  # fit filled in the strategy's default lr
        saved["train"]["lr"] = None
    return saved == mine


def slug(candidate: str) -> str:
    """A folder name for a candidate: `random:/models/bert` -> random-bert."""
    random = candidate.startswith("random:")
    name = Path(candidate.removeprefix("random:")).name or "model"
    return ("random-" if random else "") + re.sub(r"[^\w.-]+", "-", name)
