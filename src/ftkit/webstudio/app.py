"""ftkit studio: a local web app to start, watch, compare and try runs (`ftkit studio`).

Server-rendered pages (pages.py) with a little JavaScript that polls the JSON API below every two
seconds. The app is given ftkit's front door (`front`: the ftkit.api module) and calls only it
for what the CLI does (check, doctor, advise, load, models); fit and auto run as `ftkit`
processes writing ordinary run folders under RUNS, so the CLI can resume or report them and a
run outlives a restart of the studio. Everything it shows is read back from the run folders.

    GET  /new /runs /runs/NAME /compare?runs=A,B /try        the four screens (+ compare)
    POST /api/inspect            upload (multipart `file`) or {"path"}: task, columns, doctor findings
    POST /api/advise             {"path", "model", "budget", ...}: advise's recommendation, estimates
    GET  /api/models             the named offline models
    POST /api/runs               {"name", "mode": fit|auto, ...}: check like `ftkit fit`, then start
    GET  /api/runs[/NAME]        the runs table / one run's status, progress and curves
    POST /api/runs/NAME/stop|resume, DELETE /api/runs/NAME
    POST /api/predict/NAME       {"inputs": [...]} or multipart `file`: the run's predictions
    GET  /runs/NAME/report       the run's report.html
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from starlette.datastructures import UploadFile

from ftkit.errors import FtkitError
from ftkit.io import write_json
from ftkit.webstudio import pages
from ftkit.webstudio import runs as R
from ftkit.webstudio.uploads import look, save_upload

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")
FIT_KEYS = ("task", "model", "train", "test", "text_column", "label_column", "image_column", "audio_column",
            "strategy", "epochs", "batch_size", "lr", "seed")


class Studio:
    """The studio's actions on RUNS, through ftkit's front door."""

    def __init__(self, root: Path, front, max_upload_mb: float):
        self.root, self.front = root, front
        self.cap = int(max_upload_mb * 2**20)
        self.children: list[subprocess.Popen] = []
        self.predictors: dict[str, Any] = {}
        (root / R.STUDIO).mkdir(parents=True, exist_ok=True)  # a runs folder made by the CLI has none yet

    def folder(self, name: str) -> Path:
        if not NAME.match(name) or not R.is_run(self.root / name):
            raise FtkitError(f"no run named {name!r} under {self.root}")
        return self.root / name

    def inspect(self, path: Path) -> dict:
        seen = look(path)
        report = self.front.doctor(**seen.options(), train=str(path), label_noise=False,
                                   overrides={"data.validation_size": 0.1})
        findings = [{k: c.get(k) for k in ("name", "severity", "message", "fix")} for c in report["checks"]]
        return {"look": seen.__dict__, "options": seen.options(), "doctor": findings,
                "summary": report["summary"]}

    def advise(self, body: dict) -> dict:
        options = _fit_options(body)
        # profiled in this process (seconds, not a process per strategy): memory figures include the studio's own
        advice = self.front.advise(**options, budget=body.get("budget") or None, isolate=False,
                                   out=self.root / R.STUDIO / "advice.json")
        rec = advice["recommendation"]
        strategies = {name: {k: row.get(k) for k in ("total_seconds", "train_seconds", "peak_memory_mb")}
                      | {"fits": rec["fits"].get(name, ""), "error": row.get("error")}
                      for name, row in advice["strategies"].items()}
        return {"recommendation": rec, "strategies": strategies, "model": advice["model"]}

    def start(self, body: dict) -> str:
        name = str(body.get("name") or "").strip()
        if not NAME.match(name):
            raise FtkitError("run name: letters, digits, '.', '_' or '-' (up to 80), e.g. reviews-minilm")
        out = self.root / name
        if out.exists():
            raise FtkitError(f"run name {name!r}: {out} exists; choose another name")
        mode = body.get("mode", "fit")
        if mode not in ("fit", "auto"):
            raise FtkitError(f"mode {mode!r}: fit or auto")
        options = _fit_options(body)
        sets = [line.strip() for line in str(body.get("settings") or "").splitlines() if line.strip()]
        # the one-line error fit would give, before anything starts
        cfg = self.front.check(**options, out=str(out), overrides=sets)
        job = self.root / R.STUDIO / "jobs" / f"{name}.yaml"
        job.parent.mkdir(parents=True, exist_ok=True)
        job.write_text(yaml.safe_dump({k: v for k, v in cfg.model_dump(mode="json").items() if k != "out"}))
        args = ["fit", str(job), "--out", str(out)]
        budget = str(body.get("time_budget") or "").strip()
        if mode == "auto":
            if not budget:
                raise FtkitError("time budget: give one for auto, e.g. 10m")
            args = ["auto", str(job), "--time-budget", budget, "--out", str(out)]
        write_json(job.with_suffix(".json"), {"mode": mode, "time_budget": budget or None})
        self._spawn(name, args)
        return name

    def resume(self, name: str) -> None:
        folder = self.folder(name)
        if R.status_of(folder, R.kind_of(folder)) == "running":
            raise FtkitError(f"{name} is running")
        if R.kind_of(folder) == "auto":
            job = self.root / R.STUDIO / "jobs" / f"{name}.yaml"
            budget = R.job(folder).get("time_budget")
            if not job.is_file() or not budget:
                raise FtkitError(f"{name} was not started here; resume it with `ftkit auto ... --resume`")
            args = ["auto", str(job), "--out", str(folder), "--resume", "--time-budget", budget]
        else:
            args = ["fit", "--out", str(folder), "--resume"]
        self._spawn(name, args)

    def _spawn(self, name: str, args: list[str]) -> None:
        log = self.root / R.STUDIO / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.children = [c for c in self.children if c.poll() is None]  # reap the finished ones
        with open(log, "a") as out:
            # its own session: stopping the studio (Ctrl-C) leaves the run going; Stop sends SIGINT
            self.children.append(subprocess.Popen([sys.executable, "-m", "ftkit.cli", *args, "--quiet"],
                                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True))

    def predict(self, name: str, inputs: list) -> list:
        folder = R.fit_folder(self.folder(name))
        if not (folder / "summary.json").is_file():
            raise FtkitError(f"{name} has not finished; try a finished run")
        if name not in self.predictors:
            self.predictors[name] = self.front.load(folder)
        return self.predictors[name].predict(inputs)

    def models(self) -> list[dict]:
        return self.front.models()


def _fit_options(body: dict) -> dict:
    """The ftkit.fit keyword options in a form's JSON body (empty fields left out)."""
    options = {k: body[k] for k in FIT_KEYS if body.get(k) not in (None, "")}
    if "path" in body and "train" not in options:
        options["train"] = body["path"]
    for key in ("epochs", "batch_size", "seed"):
        if key in options:
            options[key] = _number(options[key], key, int)
    if "lr" in options:
        options["lr"] = _number(options["lr"], "lr", float)
    return options


def _number(value, key: str, kind):
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise FtkitError(f"--{key.replace('_', '-')} {value!r}: a number") from None


def create_studio(root: Path, front, *, max_upload_mb: float = 200.0) -> FastAPI:
    studio = Studio(Path(root), front, max_upload_mb)
    app = FastAPI(title="ftkit studio")
    _pages(app, studio)
    _api(app, studio)

    @app.exception_handler(FtkitError)
    async def one_line(request: Request, err: FtkitError):
        return JSONResponse({"error": str(err).strip().splitlines()[0]}, status_code=422)

    return app


def _pages(app: FastAPI, studio: Studio) -> None:
    @app.get("/")
    async def home():
        return RedirectResponse("/runs" if R.list_runs(studio.root) else "/new")

    @app.get("/new", response_class=HTMLResponse)
    async def new():
        return pages.new_run()

    @app.get("/runs", response_class=HTMLResponse)
    async def runs_page():
        return pages.runs(str(studio.root))

    @app.get("/runs/{name}", response_class=HTMLResponse)
    async def run_page(name: str):
        studio.folder(name)
        return pages.live(name)

    @app.get("/runs/{name}/report")
    async def report(name: str):
        path = R.fit_folder(studio.folder(name)) / "report.html"
        if not path.is_file():
            raise FtkitError(f"{name} has no report yet (it is written when the run finishes)")
        return FileResponse(path, media_type="text/html")

    @app.get("/compare", response_class=HTMLResponse)
    async def compare(runs: str = ""):
        return pages.compare([studio.folder(n).name for n in runs.split(",") if n])

    @app.get("/try", response_class=HTMLResponse)
    async def try_page():
        return pages.try_it()


def _api(app: FastAPI, studio: Studio) -> None:
    @app.post("/api/inspect")
    async def inspect(request: Request):
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_part_size=studio.cap)
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise FtkitError("choose a file to upload (CSV, JSONL, Parquet, CoNLL, or a zip of folders)")
            path = save_upload(studio.root, upload.filename, await upload.read(), studio.cap)
        else:
            body = await _json_body(request)
            if not body.get("path"):
                raise FtkitError("give a file to upload or a path on this machine")
            path = Path(str(body["path"])).expanduser()
        return await _threaded(studio.inspect, path)

    @app.post("/api/advise")
    async def advise(request: Request):
        return await _threaded(studio.advise, await _json_body(request))

    @app.get("/api/models")
    async def models():
        return studio.models()

    @app.get("/api/runs")
    async def list_runs():
        return [r.__dict__ for r in R.list_runs(studio.root)]

    @app.post("/api/runs")
    async def start(request: Request):
        return {"name": await _threaded(studio.start, await _json_body(request))}

    @app.get("/api/runs/{name}")
    async def one(name: str):
        return R.detail(studio.folder(name))

    @app.post("/api/runs/{name}/stop")
    async def stop(name: str):
        R.stop(studio.folder(name))
        return {"stopping": name}

    @app.post("/api/runs/{name}/resume")
    async def resume(name: str):
        studio.resume(name)
        return {"resumed": name}

    @app.delete("/api/runs/{name}")
    async def delete(name: str):
        R.delete(studio.folder(name))
        studio.predictors.pop(name, None)
        return {"deleted": name}

    @app.post("/api/predict/{name}")
    async def predict(name: str, request: Request):
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_part_size=studio.cap)
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise FtkitError("choose an image or audio file")
            data = await upload.read()
            if len(data) > studio.cap:
                raise FtkitError(f"{upload.filename}: over the upload cap")
            return {"predictions": await _threaded(_predict_file, studio, name, upload.filename, data)}
        body = await _json_body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs or not all(isinstance(x, str) and x.strip() for x in inputs):
            raise FtkitError("type a text to predict")
        return {"predictions": await _threaded(studio.predict, name, inputs)}


def _predict_file(studio: Studio, name: str, filename: str, data: bytes) -> list:
    suffix = Path(re.sub(r"[^A-Za-z0-9._-]", "_", filename)).suffix[:10]
    with tempfile.TemporaryDirectory(dir=studio.root / R.STUDIO, prefix="try-") as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        try:
            out = studio.predict(name, [str(path)])
        except FtkitError as error:  # name the upload, not its scratch copy; no CLI advice (--set ...)
            raise FtkitError(str(error).replace(str(path), filename).split("; fix or remove it")[0]) from None
    for p in out:
        if "audio" in p:
            p["audio"] = filename
    return out


async def _json_body(request: Request) -> dict:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise FtkitError("the request is not valid JSON") from None
    if not isinstance(body, dict):
        raise FtkitError("send a JSON object")
    return body


async def _threaded(function, *args):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)
