"""ftkit auto: every stage within the time budget, and a complete run folder at the end."""
from __future__ import annotations

import json
import time

import pytest

import ftkit
from ftkit.errors import ConfigError, DataError

from conftest import sentiment_rows, summary, write_csv


# A 60 s wall-clock budget: beside the other xdist worker the final fit's share can shrink to a few
# steps (2 of the last 3 `make test` runs on 2 cores, 2026-12-03; it passes alone and beside one other
# auto). Runs in `make test-slow`; tests/test_kill_stages.py runs auto end to end in the default suite.
@pytest.mark.slow
def test_auto_runs_every_stage_within_the_budget(tiny_model, tmp_path):
    train = write_csv(tmp_path / "train.csv", sentiment_rows(1200, 5))
    test = write_csv(tmp_path / "test.csv", sentiment_rows(100, 6))
    budget = 60
    tick = time.time()
    report = ftkit.auto(model=str(tiny_model), train=str(train), test=str(test), batch_size=8,
                        time_budget=f"{budget}s", out=tmp_path / "auto", quiet=True,
                        overrides={"train.threads": 1})
    took = time.time() - tick
    out = tmp_path / "auto"
    assert took <= budget + 5, (took, report["stages"])  # + 5: pytest's own work around the call
    assert report["within_budget"] and json.loads((out / "auto.json").read_text())["final_run"] == report["final_run"]
    for name in ("doctor.json", "advice.json", "final/summary.json", "final/model"):
        assert (out / name).exists(), name
    assert set(report["stages"]) == {"doctor", "advise", "tune", "final"}
    final = summary(report["final_run"])
    assert final["metrics"]["test"]["accuracy"] > 0.8  # separable synthetic data
    assert final["strategy"] == report["strategy"] == report["recommendation"]["strategy"]
    if report["tune"] is not None:  # a study ran on a sample: its first trial is the defaults
        assert report["tune"]["trials"]["total"] >= 1 and report["plan"]["trial_rows"] <= report["plan"]["n_train"]
    assert ftkit.load(report["final_run"]).predict(["a wonderful film"])[0]["label"] in ("pos", "neg")


def test_auto_refuses_a_budget_without_room_and_leaked_data(tiny_model, tmp_path):
    train = write_csv(tmp_path / "train.csv", sentiment_rows(200, 5))
    with pytest.raises(ConfigError, match="--time-budget"):
        ftkit.auto(model=str(tiny_model), train=str(train), time_budget="0s", out=tmp_path / "a", quiet=True)
    with pytest.raises(DataError, match="also occur in another split"):
        ftkit.auto(model=str(tiny_model), train=str(train), test=str(train), time_budget="60s",
                   out=tmp_path / "b", quiet=True)
