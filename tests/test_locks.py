"""One command per output folder: a second `ftkit fit --out X` is refused while the first runs; the
lock goes when its process does (kill -9 included) and a dead holder's lock is taken over."""
from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time

import pytest

from ftkit.errors import RunDirError
from ftkit.locks import LOCK_NAME, folder_lock

from conftest import fast_flags, run_cli, sentiment_rows, summary, write_csv


def test_second_holder_is_refused_and_the_lock_is_released(tmp_path):
    out = tmp_path / "run"
    with folder_lock(out):
        assert (out / LOCK_NAME).is_file()
        with pytest.raises(RunDirError, match=r"--out .*run is in use by another ftkit command \(pid \d+"):
            with folder_lock(out):
                pass
    assert not out.exists()  # created for the lock, nothing else written: removed again
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with folder_lock(out):
        pass
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_a_dead_holders_lock_is_taken_over(tmp_path, caplog):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": 999999, "started": "2026-01-01T00:00:00+00:00"}))
    with caplog.at_level(logging.WARNING, logger="ftkit.locks"), folder_lock(out):
        assert json.loads((out / LOCK_NAME).read_text())["pid"] != 999999
    assert "no longer running (pid 999999" in caplog.text


def test_concurrent_fit_is_refused_then_the_killed_run_resumes(tmp_path, tiny_model):
    data = {"train": write_csv(tmp_path / "train.csv", sentiment_rows(1600, 7)),
            "test": write_csv(tmp_path / "test.csv", sentiment_rows(100, 8))}
    out = tmp_path / "run"
    flags = fast_flags(tiny_model, data, out, "--epochs", "3")
    first = subprocess.Popen([sys.executable, "-m", "ftkit.cli", *flags], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out / "config.yaml").exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        for extra in ([], ["--resume"], ["--overwrite"]):
            second = run_cli(*flags, *extra)
            assert second.returncode == 2, second.stderr
            assert second.stderr.startswith("error: --out ") and second.stderr.count("\n") == 1
            assert f"is in use by another ftkit command (pid {first.pid}" in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert not (out / "summary.json").exists()
    resumed = run_cli(*flags, "--resume")  # the dead process's lock is stale: taken over
    assert resumed.returncode == 0, resumed.stderr
    assert summary(out)["timing"]["steps"] == 3 * 180 and not (out / LOCK_NAME).exists()  # 1440 rows / 8
