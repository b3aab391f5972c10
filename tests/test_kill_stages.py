"""`kill -9` at every stage (FTKIT_KILL_AT, ftkit/failpoints.py), not only mid-epoch: what the killed
process leaves never looks finished, and `--resume` (or, for an export, the same command again)
ends with exactly the metrics of a run that was never killed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ftkit.failpoints import STAGES
from ftkit.locks import LOCK_NAME

from conftest import fast_flags, run_cli, summary

FIT_STAGES = ["doctor", "zero-shot", "probe", "final-evaluation", "model-saving", "report"]
SPEECH = ["--task", "speech-recognition", "--epochs", "2", "--batch-size", "4", "--lr", "1e-3",
          "--set", "eval.bootstrap=20"]
LPFT = ["--strategy", "lp-ft", "--set", "strategy.probe_epochs=1", "--epochs", "2"]


def killed(*args, at: str) -> None:
    """`ftkit ARGS` in a subprocess that SIGKILLs itself at stage `at`."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "FTKIT_KILL_AT": at}
    proc = subprocess.run([sys.executable, "-m", "ftkit.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == -signal.SIGKILL, (at, proc.returncode, proc.stderr[-2000:])


def fit_flags(stage: str, out: Path, tiny_model, sentiment, tiny_whisper, speech) -> list[str]:
    if stage == "zero-shot":
        return ["fit", "--model", str(tiny_whisper), "--train", str(speech["train"]), "--test", str(speech["test"]),
                "--out", str(out), "--quiet", *SPEECH]
    return fast_flags(tiny_model, sentiment, out, *(LPFT if stage == "probe" else ["--epochs", "2"]))


def test_every_stage_has_a_test():
    assert sorted(FIT_STAGES + ["export", "tune-trial", "auto-stage"]) == sorted(STAGES)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, tiny_model, sentiment, tiny_whisper, speech):
    """Runs never killed, one per kind of fit, made when first asked for."""
    made: dict[str, Path] = {}

    def get(stage: str) -> Path:
        kind = {"zero-shot": "speech", "probe": "lpft"}.get(stage, "plain")
        if kind not in made:
            out = tmp_path_factory.mktemp("straight") / kind
            result = run_cli(*fit_flags(stage, out, tiny_model, sentiment, tiny_whisper, speech))
            assert result.returncode == 0, result.stderr
            made[kind] = out
        return made[kind]
    return get


@pytest.mark.precision
@pytest.mark.parametrize("stage", FIT_STAGES)
def test_fit_killed_at_a_stage_resumes_to_the_same_metrics(stage, straight, tmp_path, tiny_model, sentiment,
                                                           tiny_whisper, speech):
    reference = straight(stage)
    out = tmp_path / "run"
    flags = fit_flags(stage, out, tiny_model, sentiment, tiny_whisper, speech)
    killed(*flags, at=stage)
    # Nothing that looks finished: no summary (until the report stage), no half model, no report.
    assert not (out / "report.html").exists()
    assert (out / "summary.json").exists() == (stage == "report")
    assert (out / "model").exists() == (stage == "report")
    if stage == "doctor":  # killed before the run began: only the (released) lock file
        assert [p.name for p in out.iterdir()] == [LOCK_NAME]
    if stage == "zero-shot":
        assert (out / "config.yaml").is_file() and not (out / "test_before.json").exists()
    if stage == "model-saving":
        assert (out / ".model.tmp").is_dir()  # the half-written copy, under a name nothing reads

    result = run_cli(*flags, "--resume")
    assert result.returncode == 0, result.stderr
    s, r = summary(out), summary(reference)
    assert s["metrics"] == r["metrics"]
    assert s["history"] == r["history"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "predictions.csv"), pd.read_csv(reference / "predictions.csv"))
    assert (out / "report.html").is_file() and (out / "model" / "README.md").is_file()
    assert not (out / "checkpoints").exists() and not (out / LOCK_NAME).exists()
    if stage == "report":
        assert "wrote its report and removed its leftover checkpoints" in " ".join(result.stderr.split())
    again = run_cli(*flags, "--resume")  # finished, nothing left to do: one line, exit 2
    assert again.returncode == 2 and again.stderr.strip().count("\n") == 0
    assert "finished run (summary.json); nothing to resume" in again.stderr


@pytest.mark.precision
def test_export_killed_leaves_nothing_and_reruns_to_the_same_files(finished_run, tmp_path):
    assert run_cli("export", finished_run, "--out", tmp_path / "straight", "--quiet").returncode == 0
    out = tmp_path / "exported"
    killed("export", finished_run, "--out", out, "--quiet", at="export")
    assert not out.exists()  # the half-written export is in .exported.tmp, which nothing reads
    result = run_cli("export", finished_run, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "straight").iterdir())
    assert sorted(p.name for p in out.iterdir()) == names and not (tmp_path / ".exported.tmp").exists()
    for name in names:
        assert (out / name).read_bytes() == (tmp_path / "straight" / name).read_bytes(), name


@pytest.mark.precision
def test_tune_killed_in_a_trial_resumes_to_the_same_study(tiny_model, sentiment, tmp_path):
    def flags(out):
        return ["tune", "--model", tiny_model, "--train", sentiment["train"], "--test", sentiment["test"],
                "--strategy", "full", "--trials", "2", "--epochs", "1", "--batch-size", "8", "--pruner", "none",
                "--out", out, "--quiet", "--set", "train.threads=1", "--set", "eval.bootstrap=0"]

    straight = tmp_path / "straight"
    assert run_cli(*flags(straight)).returncode == 0
    evaluations = len(summary(straight / "trial-0000")["history"])
    out = tmp_path / "killed"
    killed(*flags(out), at=f"tune-trial:{evaluations + 1}")  # at trial 1's first validation
    assert not (out / "tune.json").exists() and not (out / "best").exists()

    result = run_cli(*flags(out), "--resume")
    assert result.returncode == 0, result.stderr
    a, b = (json.loads((folder / "tune.json").read_text()) for folder in (straight, out))
    assert b["best"]["params"] == a["best"]["params"] and b["best"]["value"] == a["best"]["value"]
    assert summary(out / "best")["metrics"] == summary(straight / "best")["metrics"]
    trials = pd.read_csv(out / "trials.csv")
    retry = trials[trials["trial"] == 2].iloc[0]  # trial 1 was killed; its parameters ran again as trial 2
    first = pd.read_csv(straight / "trials.csv").set_index("trial").loc[1]
    assert retry["param:train.lr"] == first["param:train.lr"] and retry["value"] == first["value"]


@pytest.mark.parametrize("at, kept", [("auto-stage:2", ["doctor"]),  # killed before advise was recorded
                                      ("model-saving", ["doctor", "advise", "choose", "tune"])])  # in the final fit
def test_auto_killed_keeps_finished_stages_and_resumes(at, kept, tiny_model, tmp_path):
    from conftest import sentiment_rows, write_csv

    train = write_csv(tmp_path / "train.csv", sentiment_rows(600, 5))
    test = write_csv(tmp_path / "test.csv", sentiment_rows(80, 6))
    out = tmp_path / "auto"
    flags = ["auto", "--model", tiny_model, "--train", train, "--test", test, "--set", "train.batch_size=8",
             "--time-budget", "45s", "--out", out, "--quiet", "--set", "train.threads=1"]
    killed(*flags, at=at)
    state = json.loads((out / "auto-state.json").read_text())
    assert list(state["results"]) == kept and not (out / "auto.json").exists()

    result = run_cli(*flags, "--resume", isolated=True)  # the budget counts from the process start
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "auto.json").read_text())
    assert report["resumed_stages"] == kept and set(report["stages"]) == {"doctor", "advise", "tune", "final"}
    assert report["seconds"] >= state["used_seconds"]  # the clock goes on from the time the stages used
    final = summary(report["final_run"])
    assert final["resumed"] is (at == "model-saving") and "accuracy" in final["metrics"]["test"]
    assert run_cli(*flags, "--resume").returncode == 2  # finished: nothing to resume
