"""`ftkit fit --workers N --address HOST:PORT` against a Ray cluster started on its own (issue 19:
"locally or on an existing cluster"): a head node started with `ray start --head --block` on a
free 127.0.0.1 port with token authentication (Ray's default for `ray start` since 2.5x), the fit
joining it as a client would join a cluster's head, and the head stopped after. Slow: the head
takes ~10 s to start and the 2-worker fit ~30 s."""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli, summary

RAY = Path(sys.executable).with_name("ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A one-node Ray cluster with 2 CPUs, started the way an operator starts a head node."""
    port = free_port()
    temp = tmp_path_factory.mktemp("ray-head")
    token = secrets.token_hex(32)
    # HOME in tmp: `ray start` writes the token to ~/.ray/auth_token
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
           "HOME": str(temp)}
    proc = subprocess.Popen([str(RAY), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                             "--port", str(port), "--num-cpus", "2", "--num-gpus", "0", "--include-dashboard", "false",
                             "--temp-dir", str(temp), "--disable-usage-stats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)
    address = f"127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        status = subprocess.run([str(RAY), "status", "--address", address], capture_output=True, text=True, env=env)
        if status.returncode == 0:
            break
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, status.stderr[-2000:]
        time.sleep(1)
    yield address, token
    os.killpg(proc.pid, signal.SIGTERM)  # --block: the head's processes go with it
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_fit_joins_an_existing_cluster_at_its_address(head, tiny_model, sentiment, tmp_path, monkeypatch):
    address, token = head
    out = tmp_path / "run"
    flags = ["fit", "--model", tiny_model, "--train", sentiment["train"], "--test", sentiment["test"], "--out", out,
             "--epochs", "1", "--batch-size", "8", "--quiet", "--set", "train.threads=1", "--set", "eval.bootstrap=0"]
    monkeypatch.setenv("HOME", str(tmp_path))  # no token file of the head's to find
    nobody = run_cli(*flags, "--workers", "2", "--address", f"127.0.0.1:{free_port()}", isolated=True)
    assert nobody.returncode == 2 and "no Ray cluster answers there" in nobody.stderr
    no_token = run_cli(*flags, "--workers", "2", "--address", address, isolated=True)
    assert no_token.returncode == 2 and "RAY_AUTH_TOKEN" in no_token.stderr, no_token.stderr[-2000:]
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", token)
    too_many = run_cli(*flags, "--workers", "3", "--address", address, isolated=True)
    assert too_many.returncode == 2 and "--workers 3" in too_many.stderr and address in too_many.stderr
    assert not out.exists()  # refused before anything was written
    result = run_cli(*flags, "--workers", "2", "--address", address, isolated=True)
    assert result.returncode == 0, result.stderr[-3000:]
    d = summary(out)["distributed"]
    assert d["workers"] == 2 and d["address"] == address and d["backend"] == "gloo"
    assert summary(out)["metrics"]["test"]["accuracy"] > 0
