"""ftkit tune: a local Optuna study (files, pruning, resume, kill, time budget) and the Ray executor."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pandas as pd
import pytest

import ftkit
from ftkit.errors import ConfigError
from ftkit.hpo.space import parse_spec
from ftkit.hpo.tune import parse_duration

from conftest import run_cli, summary

# A small space around the lr the tiny model learns with (see conftest.fast_flags).
SPACE = {"train.lr": {"low": 1e-3, "high": 6e-3, "log": True}, "model.dropout": {"low": 0.0, "high": 0.2}}
FAST = {"train.threads": 1, "eval.bootstrap": 0}


def _tune(tiny_model, sentiment, out: Path, **kw) -> dict:
    options = {"model": str(tiny_model), "train": str(sentiment["train"]), "test": str(sentiment["test"]),
               "epochs": 2, "batch_size": 8, "space": SPACE, "quiet": True}
    options.update(kw)
    options["overrides"] = {**FAST, **options.get("overrides", {})}
    return ftkit.tune(out=out, **options)


def test_parse_duration_and_space_errors():
    assert parse_duration("90s") == 90 and parse_duration("20m") == 1200 and parse_duration("1.5h") == 5400
    with pytest.raises(ConfigError, match="--time-budget"):
        parse_duration("soon")
    with pytest.raises(ConfigError, match="tune.space.train.lr"):
        parse_spec({"space": {"train.lr": {"low": 1e-3}}})
    with pytest.raises(ConfigError, match="tune.space.train.nope"):
        parse_spec({"space": {"train.nope": {"choices": [1, 2]}}})


def test_local_study_writes_everything(tiny_model, sentiment, tmp_path):
    report = _tune(tiny_model, sentiment, tmp_path / "t", trials=3, refit_on_all=True)
    out = tmp_path / "t"
    for name in ("study.db", "trials.csv", "trials.png", "tune.json", "best/model", "best/summary.json"):
        assert (out / name).exists(), name
    assert json.loads((out / "tune.json").read_text()) == json.loads(json.dumps(report))
    assert report["trials"]["total"] == 3 and report["best"]["value"] > 0.5
    assert set(report["best"]["params"]) == set(SPACE)
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["trial"]) == [0, 1, 2] and "param:train.lr" in trials
    for run_dir in trials["run_dir"]:  # trials never see the test split and keep no model
        s = summary(run_dir)
        assert "test" not in s["metrics"] and not (Path(run_dir) / "model").exists()
    best = summary(out / "best")  # --refit-on-all: validation rows train too, for the best trial's epochs
    assert best["metrics"]["test"]["accuracy"] > 0.5 and "validation" not in best["metrics"]
    assert best["data"]["train"] == 240 and report["refit"]["epochs"] == math.ceil(report["best"]["best_epoch"])
    assert report["refit"]["test"]["accuracy"] == best["metrics"]["test"]["accuracy"]
    assert report["importances"] or report["importances_note"]


def test_absurd_lr_is_pruned(tiny_model, sentiment, tmp_path):
    # Two good trials first, then an lr that wrecks the model: the median pruner stops it early.
    good = {"train.lr": 3e-3, "model.dropout": 0.0}
    report = _tune(tiny_model, sentiment, tmp_path / "t", trials=3, epochs=4, points=[good, good, {**good, "train.lr": 0.9}],
                   space={"train.lr": {"low": 1e-4, "high": 0.95, "log": True}, "model.dropout": SPACE["model.dropout"]},
                   overrides={"train.patience": None}, refit=False)
    assert report["trials"]["pruned"] == 1 and report["refit"] is None
    s = summary(tmp_path / "t" / "trial-0002")
    assert s["stopped"] == {"early": True, "reason": "pruned"}
    assert s["timing"]["steps"] < 4 * 27  # 216 training rows / 8 per batch = 27 steps per epoch


def test_resume_continues_the_count_and_retries_a_killed_trial(tiny_model, sentiment, tmp_path):
    import optuna

    out = tmp_path / "t"
    _tune(tiny_model, sentiment, out, trials=2, refit=False, epochs=1)
    first = {p.name: (p / "summary.json").stat().st_mtime for p in out.glob("trial-*")}
    # A kill mid-trial leaves it RUNNING in the database (with its parameters drawn).
    study = optuna.load_study(study_name="ftkit", storage=f"sqlite:///{out / 'study.db'}")
    killed = study.ask({"train.lr": optuna.distributions.FloatDistribution(1e-3, 6e-3, log=True),
                        "model.dropout": optuna.distributions.FloatDistribution(0.0, 0.2)})
    result = run_cli("tune", "--resume", "--out", out, "--trials", "4", "--quiet")
    assert result.returncode == 0, result.stderr
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["state"]) == ["complete", "complete", "fail", "complete", "complete"]
    retry = trials[trials["trial"] == 3].iloc[0]
    assert retry["retry_of"] == killed.number == 2 and retry["param:train.lr"] == pytest.approx(killed.params["train.lr"])
    assert {p.name: (p / "summary.json").stat().st_mtime for p in out.glob("trial-000[01]")} == first
    assert (out / "best" / "model").is_dir()
    assert "tune.json" in result.stdout


def test_time_budget_is_honoured(tiny_model, sentiment, tmp_path):
    started = time.monotonic()
    report = _tune(tiny_model, sentiment, tmp_path / "t", time_budget="24s", epochs=200,
                   overrides={"train.patience": None})
    took = time.monotonic() - started
    assert took < 24 + 6, took
    assert report["trials"]["total"] >= 1 and (tmp_path / "t" / "best" / "model").is_dir()
    assert summary(tmp_path / "t" / "trial-0000")["stopped"]["reason"] == "time limit"


def test_ray_executor_runs_trials_in_parallel(tiny_model, sentiment, tmp_path):
    pytest.importorskip("ray.tune")
    started = time.monotonic()
    report = _tune(tiny_model, sentiment, tmp_path / "t", trials=4, executor="ray", trial_cpus=1, epochs=1)
    took = time.monotonic() - started
    out = tmp_path / "t"
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 4 and report["executor"] == "ray" and report["trials"]["total"] == 4
    assert set(trials["state"]) <= {"complete", "pruned"} and report["trials"]["complete"] >= 1
    for row in trials.itertuples():
        assert Path(row.run_dir) == out / f"trial-{row.trial:04d}"
        if row.state == "complete":
            assert summary(row.run_dir)["outputs"]["test_scored"] is False
    assert (out / "best" / "model").is_dir() and report["refit"]["test"]["accuracy"] > 0
    print(f"ray tune of 4 trials: {took:.1f}s, states {list(trials['state'])}")
