"""HTTP serving throughput: `ftkit serve` (torch, ONNX, ONNX int8) against a naive FastAPI +
transformers `pipeline` wrapper (bench/serve_peer.py), on the demo's fine-tuned MiniLM-L6.

Each server runs alone on 127.0.0.1 (a free port), started and stopped here. The load generator
(wrk, C, keep-alive connections; the httpx fallback when wrk is missing: `apt-get install wrk`)
keeps C clients busy, each sending one review per request and waiting for the answer, for
--wrk-seconds per level (httpx: a bounded number of requests, at most --seconds); it records
requests/s, p50/p99 latency and failed requests. Offline, the ONNX fp32 and int8 predictors are
timed on the test reviews (examples/s) and scored (accuracy on the 1,000 test reviews).

    .venv/bin/python bench/serve.py [--run RUN_DIR] [--clients 1,8,64] [--out bench/results/serve.json]

Without --run it fine-tunes MiniLM-L6 on 2,000 Rotten Tomatoes reviews (1 epoch, ~1 min) first.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work" / "serve"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
FTKIT = [sys.executable, "-m", "ftkit.cli"]


def sh(*args) -> None:
    subprocess.run([str(a) for a in args], check=True, env=ENV, cwd=ROOT)


def prepare(run: Path | None) -> tuple[Path, Path]:
    """(run folder, test CSV): the given run, or MiniLM-L6 fine-tuned here on 2,000 reviews."""
    data = WORK / "data" / "rotten-tomatoes"
    if not (data / "test.csv").is_file():
        sh(*FTKIT, "datasets", "rotten-tomatoes", "--out", WORK / "data", "--n-train", "2000")
    if run is None:
        run = WORK / "run"
        if not (run / "summary.json").is_file():
            sh(*FTKIT, "fit", "--model", "minilm-l6", "--train", data / "train.csv", "--test", data / "test.csv",
               "--epochs", "1", "--batch-size", "16", "--lr", "5e-5", "--out", run, "--overwrite", "--quiet",
               "--set", "data.validation_size=0")
    return run, data / "test.csv"


def export(run: Path, quantize: bool) -> Path:
    out = WORK / ("onnx-int8" if quantize else "onnx")
    if not (out / "ftkit.json").is_file():
        sh(*FTKIT, "export", run, "--format", "onnx", "--out", out, "--overwrite",
           *(["--quantize", "int8"] if quantize else []))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name: str, target: Path, port: int) -> subprocess.Popen:
    if name == "peer":
        cmd = [sys.executable, "-m", "uvicorn", "bench.serve_peer:app", "--port", str(port), "--log-level", "warning"]
        env = {**ENV, "MODEL_DIR": str(target / "model")}
    else:
        cmd = [*FTKIT, "serve", str(target), "--port", str(port), "--quiet"]
        env = ENV
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} server exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.3)
    raise SystemExit(f"{name} server did not answer /health")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


async def load(port: int, texts: list[str], clients: int, requests: int, seconds: float) -> dict:
    """C clients, each: send one text, wait, repeat; until `requests` answers or `seconds` passed."""
    latencies, failed, sent = [], 0, 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient, k: int) -> None:
        nonlocal failed, sent
        while sent < requests and time.perf_counter() < deadline:
            text = texts[(sent + k) % len(texts)]
            sent += 1
            tick = time.perf_counter()
            try:
                reply = await http.post("/predict", json={"inputs": [text]})
                ok = reply.status_code == 200 and len(reply.json()["predictions"]) == 1
            except httpx.HTTPError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - tick)
            else:
                failed += 1

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120, limits=limits) as http:
        await http.post("/predict", json={"inputs": texts[:4]})  # warm-up
        started = time.perf_counter()
        await asyncio.gather(*(client(http, k) for k in range(clients)))
        wall = time.perf_counter() - started
    latencies.sort()
    return {"clients": clients, "requests": len(latencies) + failed, "failed": failed,
            "requests_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(1000 * statistics.median(latencies), 1),
            "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1)}


WRK_SCRIPT = """
local bodies = {}
for line in io.lines(os.getenv("FTKIT_BODIES")) do bodies[#bodies + 1] = line end
local i, per = 0, tonumber(os.getenv("FTKIT_PER_CONNECTION"))
wrk.method, wrk.headers["content-type"] = "POST", "application/json"
request = function()
  i = i + 1
  return wrk.format(nil, "/predict", nil, bodies[(i % #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("JSON {\\"answers\\": %d, \\"seconds\\": %f, \\"failed\\": %d, \\"p50_ms\\": %.1f, \\"p99_ms\\": %.1f}\\n",
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def load_wrk(port: int, texts: list[str], clients: int, seconds: float) -> dict:
    """wrk (C, keep-alive; Debian's `wrk`): C connections, each one request at a time, for `seconds`.
    A light client: on 2 cores the Python client (httpx) itself capped /health at ~120 requests/s."""
    work = WORK / "wrk"
    work.mkdir(parents=True, exist_ok=True)
    (work / "bodies.jsonl").write_text("".join(json.dumps({"inputs": [t]}) + "\n" for t in texts))
    (work / "post.lua").write_text(WRK_SCRIPT)
    env = {**ENV, "FTKIT_BODIES": str(work / "bodies.jsonl"), "FTKIT_PER_CONNECTION": "0"}
    httpx.post(f"http://127.0.0.1:{port}/predict", json={"inputs": texts[:4]}, timeout=60)  # warm-up
    out = subprocess.run(["wrk", "-t", str(min(2, clients)), "-c", str(clients), "-d", f"{seconds:g}s", "--latency",
                          "--timeout", "30s", "-s", str(work / "post.lua"), f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, env=env, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk failed: {out.stdout[-1000:]} {out.stderr[-1000:]}")
    r = json.loads(line[5:])
    return {"clients": clients, "requests": r["answers"], "failed": r["failed"],
            "requests_per_s": round(r["answers"] / r["seconds"], 1), "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
            "client": "wrk"}


OFFLINE = """
import json, statistics, sys, time
import ftkit
from ftkit.onnxrt.runtime import load_onnx
folders, test, rounds = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
torch_pred = ftkit.load(folders["ftkit-torch"]).predictor
texts = torch_pred.read(test).texts
result = {}
for threads in (2, 1):
    preds = {"ftkit-torch": torch_pred} if threads == 2 else {}
    preds.update({n: load_onnx(folders[n], threads) for n in ("ftkit-onnx", "ftkit-int8")})
    wall = {n: [] for n in preds}; cpu = {n: [] for n in preds}
    for name, p in preds.items():
        p.predict(texts[:64])  # warm-up
    for r in range(rounds):  # interleaved rounds: a load spike hits every predictor alike
        for name, p in preds.items():
            t, c = time.perf_counter(), time.process_time()
            for i in range(0, len(texts), 64):
                p.predict(texts[i:i + 64])
            wall[name].append(time.perf_counter() - t); cpu[name].append(time.process_time() - c)
    for name, p in preds.items():
        row = result.setdefault(name, {"accuracy": p.evaluate(p.read(test))[0]["accuracy"]})
        row[f"threads_{threads}"] = {"examples_per_s": round(len(texts) / statistics.median(wall[name]), 1),
                                     "examples_per_cpu_s": round(len(texts) / statistics.median(cpu[name]), 1),
                                     "rounds_s": [round(x, 2) for x in wall[name]]}
    result[f"int8 / fp32 per round, {threads} threads"] = [round(f / q, 2) for f, q in zip(wall["ftkit-onnx"], wall["ftkit-int8"])]
print(json.dumps(result))
"""


def offline(targets: dict, test: Path, rounds: int) -> dict:
    """examples/s of predict() over the test reviews (chunks of 64) and test accuracy, torch and
    the two ONNX exports in one fresh process, in interleaved rounds (wall and CPU seconds; ONNX at
    2 and 1 intra-op threads), so the ratio is measured under the same conditions for both."""
    folders = {n: str(targets[n]) for n in ("ftkit-torch", "ftkit-onnx", "ftkit-int8")}
    out = subprocess.run([sys.executable, "-c", OFFLINE, json.dumps(folders), str(test), str(rounds)],
                         capture_output=True, text=True, env=ENV, cwd=ROOT)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path)
    ap.add_argument("--clients", default="1,8,64")
    ap.add_argument("--requests", type=int, default=640, help="answers per level (at least 8 per client)")
    ap.add_argument("--seconds", type=float, default=45.0, help="longest time per level")
    ap.add_argument("--wrk-seconds", type=float, default=20.0, help="seconds per level with wrk")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "serve.json")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved offline rounds over the test reviews")
    ap.add_argument("--offline-only", action="store_true", help="skip the HTTP load levels")
    args = ap.parse_args()
    run, test = prepare(args.run)
    targets = {"peer": run, "ftkit-torch": run, "ftkit-onnx": export(run, False), "ftkit-int8": export(run, True)}
    texts = pd.read_csv(test)["text"].astype(str).tolist()
    result = {"run": str(run), "cpus": os.cpu_count(), "servers": {}, "offline": {}}
    for name, target in ({} if args.offline_only else targets).items():
        port = free_port()
        proc = start(name, target, port)
        try:
            levels = [load_wrk(port, texts, c, args.wrk_seconds) if shutil.which("wrk") else
                      asyncio.run(load(port, texts, c, max(args.requests, 8 * c), args.seconds))
                      for c in map(int, args.clients.split(","))]
        finally:
            stop(proc)
        result["servers"][name] = levels
        print(name, json.dumps(levels), flush=True)
    result["offline"] = offline(targets, test, args.rounds)
    print(json.dumps(result["offline"]), flush=True)
    top = str(max(map(int, args.clients.split(","))))
    by = {n: {str(lv["clients"]): lv for lv in levels} for n, levels in result["servers"].items()}
    off = result["offline"]
    result["ratios"] = {
        **({f"ftkit-torch / peer requests/s at {top} clients":
            round(by["ftkit-torch"][top]["requests_per_s"] / by["peer"][top]["requests_per_s"], 2)} if by else {}),
        **{f"int8 / onnx fp32 examples/s (offline, {t} threads, median of rounds)":
           statistics.median(off[f"int8 / fp32 per round, {t} threads"]) for t in (2, 1)},
        **{f"int8 / onnx fp32 examples per CPU second ({t} threads)":
           round(off["ftkit-int8"][f"threads_{t}"]["examples_per_cpu_s"] / off["ftkit-onnx"][f"threads_{t}"]["examples_per_cpu_s"], 2)
           for t in (2, 1)},
        "int8 - onnx fp32 accuracy (points)":
            round(100 * (off["ftkit-int8"]["accuracy"] - off["ftkit-onnx"]["accuracy"]), 2)}
    print(json.dumps(result["ratios"], indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
