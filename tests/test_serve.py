"""`ftkit serve`: a real uvicorn server on a free 127.0.0.1 port per test, stopped after.

Most tests run uvicorn in a thread of the test process (the model is loaded once, no fresh
interpreter per server); `test_cli_serve_with_two_workers` starts `ftkit serve` itself. Every
prediction is compared with `ftkit.load(RUN).predict` on the same inputs.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from conftest import run_cli, write_image_folder

import ftkit
from ftkit.errors import ConfigError, DataError
from ftkit.serving.batcher import MicroBatcher


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(model: Path, **settings):
    """`ftkit.serve_app(model)` behind uvicorn on a free local port; yields an httpx client."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(ftkit.serve_app(model, **settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert thread.is_alive() and time.time() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def same_predictions(served: list[dict], local: list[dict]) -> None:
    """Labels, tags and spans identical; scores equal up to float noise from batch padding."""
    assert len(served) == len(local)
    for a, b in zip(served, local):
        assert a.keys() == b.keys()
        for key in a:
            if key in ("score", "probabilities"):
                assert a[key] == pytest.approx(b[key], abs=1e-5)
            elif key == "entities":
                assert [{k: v for k, v in e.items() if k != "score"} for e in a[key]] == \
                       [{k: v for k, v in e.items() if k != "score"} for e in b[key]]
            else:
                assert a[key] == b[key], key


def metric(client: httpx.Client, name: str) -> float:
    """The value of one Prometheus sample (name with its labels, as printed) in /metrics; 0 when absent."""
    for line in client.get("/metrics").text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == name:
            return float(value)
    return 0.0


# ---------------------------------------------------------------- text classification

def test_text_predictions_info_metrics_and_docs(finished_run):
    texts = ["a wonderful film", "dull and boring", "fine", "x" * 300]
    local = ftkit.load(finished_run).predict(texts)
    with serving(finished_run) as client:
        assert client.get("/health").json() == {"status": "ok"}
        info = client.get("/info").json()
        assert info["task"] == "text-classification" and info["labels"] == ["neg", "pos"]
        assert info["runtime"] == "torch" and "accuracy" in info["metrics"] and info["ftkit_version"]
        reply = client.post("/predict", json={"inputs": texts})
        assert reply.status_code == 200
        same_predictions(reply.json()["predictions"], local)
        assert client.get("/openapi.json").json()["paths"]["/predict"]["post"]
        assert client.get("/docs").status_code == 200
        text = client.get("/metrics").text
        assert 'ftkit_requests_total{endpoint="/predict",status="200"} 1.0' in text
        assert "ftkit_batch_size_bucket" in text and "ftkit_request_seconds_bucket" in text
        assert metric(client, "ftkit_inputs_total") == len(texts)


BAD = [  # body, status, words of the one-line error
    (b'{"inputs": ["ok"', 400, "not valid JSON"),
    (b'{"input": ["x"]}', 422, "unknown field(s) 'input'"),
    (b'{"inputs": []}', 422, "'inputs' is empty"),
    (b'{"inputs": "one text"}', 422, "'inputs' is a string, not a list"),
    (b'{"inputs": [1, "b"]}', 422, "inputs[0] is a number"),
    (b'[1, 2]', 422, "not a JSON object"),
    (json.dumps({"inputs": ["a"] * 9}).encode(), 413, "9 inputs in one request; the limit is 8"),
    (json.dumps({"inputs": ["ok", "y" * 2001]}).encode(), 413, "inputs[1]: 2,001 characters"),
    (b'{"inputs": ["' + b"z" * 70_000 + b'"]}', 413, "the limit is 65,536 (--max-body-mb)"),
]


def test_bad_requests_get_4xx_and_the_server_keeps_serving(finished_run):
    with serving(finished_run, max_inputs=8, max_text_chars=2000, max_body_mb=1 / 16) as client:
        for body, status, words in BAD:
            reply = client.post("/predict", content=body, headers={"content-type": "application/json"})
            assert reply.status_code == status, (body[:40], reply.text)
            error = reply.json()["error"]
            assert words in error and "\n" not in error
            assert client.post("/predict", json={"inputs": ["still here"]}).status_code == 200
        reply = client.post("/predict", files={"files": ("a.txt", b"hello")})
        assert reply.status_code == 415 and "takes texts" in reply.json()["error"]
        assert metric(client, 'ftkit_requests_total{endpoint="/predict",status="422"}') == 5


def test_concurrent_requests_are_micro_batched(finished_run):
    texts = [f"review number {i} was {'great' if i % 2 else 'awful'}" for i in range(24)]
    local = ftkit.load(finished_run).predict(texts)
    with serving(finished_run, max_batch_size=64, max_wait_ms=200) as client:
        with ThreadPoolExecutor(24) as pool:
            replies = list(pool.map(lambda t: client.post("/predict", json={"inputs": [t]}), texts))
        assert all(r.status_code == 200 for r in replies)
        same_predictions([r.json()["predictions"][0] for r in replies], local)
        batches = metric(client, "ftkit_batch_size_count")
        assert metric(client, "ftkit_batch_size_sum") == 24
        assert batches < 24 / 2, f"{batches} model calls for 24 concurrent requests"


def test_a_bad_request_in_a_batch_fails_alone():
    """The batcher re-runs a failed batch request by request: only the bad one gets the error."""
    calls = []

    def predict(inputs):
        calls.append(len(inputs))
        if "bad" in inputs:
            raise DataError("<input>: cannot read 'bad'")
        return [x.upper() for x in inputs]

    async def main():
        batcher = MicroBatcher(predict, max_batch_size=16, max_wait_ms=100)
        await batcher.start()
        try:
            return await asyncio.gather(batcher.submit(["a", "b"]), batcher.submit(["bad"]), batcher.submit(["c"]),
                                        return_exceptions=True)
        finally:
            await batcher.stop()

    ok, bad, other = asyncio.run(main())
    assert ok == ["A", "B"] and other == ["C"] and isinstance(bad, DataError)
    assert calls[0] == 4  # one batch first, then each request alone


# ---------------------------------------------------------------- NER, images, audio, speech

def test_ner_entities_with_offsets(tiny_model, ner, tmp_path):
    out = tmp_path / "ner"
    result = run_cli("fit", "--task", "token-classification", "--model", tiny_model, "--train", ner["train"],
                     "--out", out, "--epochs", "1", "--batch-size", "8", "--quiet", "--set", "train.threads=1",
                     "--set", "data.validation_size=0")
    assert result.returncode == 0, result.stderr
    inputs = ["the movie was great and good", ["awful", "bad", "plot"]]
    local = ftkit.load(out).predict(inputs)
    with serving(out) as client:
        reply = client.post("/predict", json={"inputs": inputs})
        assert reply.status_code == 200
        served = reply.json()["predictions"]
        same_predictions(served, local)
        assert served[0]["tokens"] == ["the", "movie", "was", "great", "and", "good"]
        bad = client.post("/predict", json={"inputs": [["ok", 3]]})
        assert bad.status_code == 422 and "only strings" in bad.json()["error"]


def test_images_as_base64_and_multipart(tiny_resnet, images, tmp_path):
    out = tmp_path / "img"
    result = run_cli("fit", "--task", "image-classification", "--model", tiny_resnet, "--train", images["train"],
                     "--out", out, "--epochs", "1", "--batch-size", "16", "--quiet", "--set", "train.threads=1",
                     "--set", "data.image_size=20", "--set", "data.validation_size=0")
    assert result.returncode == 0, result.stderr
    files = sorted(f for f in write_image_folder(tmp_path / "new", 6, 7).rglob("*") if f.is_file())  # png, bmp, webp
    local = ftkit.load(out).predict([str(f) for f in files])
    with serving(out) as client:
        encoded = [base64.b64encode(f.read_bytes()).decode() for f in files]
        reply = client.post("/predict", json={"inputs": [encoded[0], "data:image/png;base64," + encoded[1],
                                                         *encoded[2:]]})
        assert reply.status_code == 200
        same_predictions(reply.json()["predictions"], local)
        reply = client.post("/predict", files=[("files", (f.name, f.read_bytes(), "application/octet-stream")) for f in files])
        assert reply.status_code == 200
        same_predictions(reply.json()["predictions"], local)
        for body, words in (({"inputs": [encoded[0], base64.b64encode(b"not an image").decode()]},
                             "inputs[1]: not a readable image"),
                            ({"inputs": ["%%%"]}, "inputs[0]: not valid base64"),
                            ({"inputs": [encoded[0][: len(encoded[0]) // 2]]}, "inputs[0]:")):
            bad = client.post("/predict", json=body)
            assert bad.status_code == 422 and words in bad.json()["error"], bad.text
        bad = client.post("/predict", files=[("files", ("broken.png", b"\x89PNG\r\n", "image/png"))])
        assert bad.status_code == 422 and "broken.png: not a readable image" in bad.json()["error"]
        assert client.post("/predict", json={"inputs": encoded[:1]}).status_code == 200


def write_tones(folder: Path, n: int) -> Path:
    import numpy as np
    import soundfile

    rng = np.random.default_rng(n)
    for i in range(n):
        label = ("low", "high")[i % 2]
        t = np.arange(4000) / 8000
        (folder / label).mkdir(parents=True, exist_ok=True)
        wave = 0.3 * np.sin(2 * np.pi * (300 if label == "low" else 1200) * rng.uniform(0.9, 1.1) * t)
        soundfile.write(folder / label / f"{i:03d}.wav", wave.astype("float32"), 8000)
    return folder


def test_audio_classification_and_speech_recognition(tiny_whisper, speech, tmp_path):
    tones = write_tones(tmp_path / "tones", 12)
    audio = tmp_path / "audio"
    result = run_cli("fit", "--task", "audio-classification", "--model", tiny_whisper, "--train", tones,
                     "--strategy", "linear-probe", "--epochs", "1", "--batch-size", "8", "--out", audio,
                     "--quiet", "--set", "train.threads=1", "--set", "data.validation_size=0")
    assert result.returncode == 0, result.stderr
    clips = sorted(tones.rglob("*.wav"))[:3]
    with serving(audio) as client:
        reply = client.post("/predict", files=[("files", (c.name, c.read_bytes(), "audio/wav")) for c in clips])
        assert reply.status_code == 200
        same_predictions(reply.json()["predictions"], ftkit.load(audio).predict([str(c) for c in clips]))
        bad = client.post("/predict", json={"inputs": [base64.b64encode(b"RIFF....WAVEfmt ").decode()]})
        assert bad.status_code == 422 and "inputs[0]: not a readable audio file" in bad.json()["error"]
    asr = tmp_path / "asr"
    ftkit.fit(task="speech-recognition", model=str(tiny_whisper), train=str(speech["train"]), out=str(asr),
              epochs=1, batch_size=4, quiet=True, overrides={"data.validation_size": 0, "train.threads": 1})
    wavs = sorted(Path(speech["test"]).parent.rglob("*.wav"))[:2]
    with serving(asr) as client:
        reply = client.post("/predict", json={"inputs": [base64.b64encode(w.read_bytes()).decode() for w in wavs]})
        assert reply.status_code == 200
        served = reply.json()["predictions"]
        local = ftkit.load(asr).predict([str(w) for w in wavs])
        assert [p["transcript"] for p in served] == [p["transcript"] for p in local]
        assert [p["audio"] for p in served] == ["inputs[0]", "inputs[1]"]  # the upload, not a temp file


# ---------------------------------------------------------------- the command

def test_cli_serve_with_two_workers(finished_run):
    port = free_port()
    env = {**os.environ, "FTKIT_LOG": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "ftkit.cli", "serve", str(finished_run), "--port", str(port),
                             "--workers", "2", "--max-wait-ms", "1", "--quiet"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.time() + 120
            while True:
                assert proc.poll() is None, proc.stderr.read()
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.time() < deadline, "ftkit serve did not answer /health"
                time.sleep(0.3)
            local = ftkit.load(finished_run).predict(["a fine film"])
            for _ in range(6):
                same_predictions(client.post("/predict", json={"inputs": ["a fine film"]}).json()["predictions"], local)
            time.sleep(1.5)  # let both workers come up; /metrics adds up every worker's requests
            assert metric(client, "ftkit_inputs_total") == 6
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    with socket.socket() as s:  # the port is free again: every worker stopped
        s.bind(("127.0.0.1", port))


def test_cli_refuses_bad_settings_in_one_line(finished_run):
    for args, words in ((["--runtime", "onnx"], "holds a torch model; export one first"),
                        (["--port", "0"], "--port 0"), (["--max-batch-size", "0"], "--max-batch-size 0"),
                        (["--runtime", "tpu"], "--runtime tpu")):
        result = run_cli("serve", finished_run, *args)
        assert result.returncode == 2 and words in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="--workers 0"):
        ftkit.serve(finished_run, workers=0)


def test_serve_an_onnx_export(finished_run, tmp_path):
    onnx = ftkit.export(finished_run, tmp_path / "onnx", format="onnx", quantize="int8")
    texts = ["a wonderful film", "dull and boring"]
    with serving(onnx, runtime="onnx") as client:
        info = client.get("/info").json()
        assert info["runtime"] == "onnx" and info["task"] == "text-classification"
        reply = client.post("/predict", json={"inputs": texts})
        assert reply.status_code == 200
        same_predictions(reply.json()["predictions"], ftkit.load(onnx).predict(texts))
    with pytest.raises(ConfigError, match="holds an ONNX model"):
        ftkit.serve_app(onnx, runtime="torch")
