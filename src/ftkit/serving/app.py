"""The HTTP service of one saved model (`ftkit serve`): FastAPI, micro-batched predictions.

    GET  /health    200 {"status": "ok"} once the model is loaded (the app is built after loading)
    GET  /info      task, labels, base model, runtime, test metrics (summary.json), ftkit version
    POST /predict   {"inputs": [...]} (texts; images / audio: base64 strings) or a multipart upload
                    of files (images / audio) -> {"predictions": [...]}: what
                    `ftkit.load(RUN_DIR).predict(inputs)` returns for the same inputs
    GET  /metrics   Prometheus text (requests, latency, batch sizes)
    GET  /docs      the OpenAPI page

The app takes a loaded predictor (the api builds it: `ftkit.serve`, `ftkit.serve_app`); it never
loads a model itself. Bad requests get 4xx and {"error": "<one line>"}; an error inside the model
gets 500 and the server keeps serving.
"""
from __future__ import annotations

import logging
import tempfile
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ftkit.errors import FtkitError
from ftkit.serving.batcher import MicroBatcher
from ftkit.serving.inputs import BadRequest, Limits, from_files, from_json, write_uploads
from ftkit.serving.metrics import ServerMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeSettings:
    max_batch_size: int = 64  # inputs per model call (--max-batch-size; 32 -> 64: 93 -> 102 requests/s at 64 clients)
    max_wait_ms: float = 5.0  # how long a batch waits for more requests (--max-wait-ms)
    max_inputs: int = 256  # per request (--max-inputs)
    max_text_chars: int = 100_000  # per text (--max-text-chars)
    max_body_mb: float = 20.0  # request body cap (--max-body-mb)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 2**20)


class PredictRequest(BaseModel):
    inputs: list[Union[str, list[str], dict[str, str]]] = Field(
        ..., description="texts (NER: a text or a list of words; a model of several text columns: a list of "
        "texts or an object keyed by column, e.g. {\"premise\": ..., \"hypothesis\": ...}); images and audio: "
        "base64-encoded files")


class PredictResponse(BaseModel):
    predictions: list[dict[str, Any]] = Field(..., description="one object per input, in order")


MULTIPART = {"type": "object", "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}
PREDICT_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": PredictRequest.model_json_schema()},
    "multipart/form-data": {"schema": MULTIPART}}}}


def create_app(predictor, info: dict, kind: str, settings: Optional[ServeSettings] = None) -> FastAPI:
    """The service of `predictor` (anything with predict(list) -> list[dict]); `kind` is the task's
    input kind (tasks.base.INPUT_KINDS); `info` is what GET /info answers (+ a pair's "text_columns")."""
    settings = settings or ServeSettings()
    metrics = ServerMetrics()
    batcher = MicroBatcher(predictor.predict, settings.max_batch_size, settings.max_wait_ms, metrics.on_batch)
    limits, columns = Limits(settings.max_inputs, settings.max_text_chars), tuple(info.get("text_columns") or ())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title=f"ftkit: {info.get('task', 'model')}", version=str(info.get("ftkit_version", "")),
                  lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict:
        metrics.requests.labels("/health", "200").inc()
        return {"status": "ok"}

    @app.get("/info")
    async def get_info() -> dict:
        metrics.requests.labels("/info", "200").inc()
        return {**info, "batching": {"max_batch_size": settings.max_batch_size, "max_wait_ms": settings.max_wait_ms},
                "limits": {"max_inputs": settings.max_inputs, "max_text_chars": settings.max_text_chars,
                           "max_body_mb": settings.max_body_mb}}

    @app.get("/metrics")
    async def get_metrics() -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/predict", response_model=PredictResponse, openapi_extra=PREDICT_BODY)
    async def predict(request: Request):
        tick = time.perf_counter()
        try:
            response = await _predict(request, batcher, kind, limits, settings, columns)
        except BadRequest as err:
            response = JSONResponse({"error": str(err)}, status_code=err.status)
        except FtkitError as err:  # bad input the predictor found (e.g. an input it cannot read)
            response = JSONResponse({"error": str(err).splitlines()[0]}, status_code=422)
        except Exception as err:  # noqa: BLE001  (answer 500, keep serving)
            log.exception("prediction failed")
            response = JSONResponse({"error": f"internal error: {type(err).__name__}: {err}"[:300]}, status_code=500)
        metrics.requests.labels("/predict", str(response.status_code)).inc()
        metrics.latency.observe(time.perf_counter() - tick)
        return response

    return app


async def _predict(request: Request, batcher: MicroBatcher, kind: str, limits: Limits,
                   settings: ServeSettings, columns: tuple[str, ...]) -> JSONResponse:
    body = await _read_body(request, settings.max_body_bytes)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        inputs = from_files(await _files(request, body, limits), kind, limits)
    else:  # JSON whatever the header says (curl -d sends form-urlencoded): the body decides
        inputs = from_json(body, kind, limits, columns)
    if kind not in ("image", "audio"):
        return JSONResponse({"predictions": await batcher.submit(inputs)})
    with tempfile.TemporaryDirectory(prefix="ftkit-serve-") as folder:
        paths = await run_in_threadpool(write_uploads, inputs, Path(folder))
        predictions = await batcher.submit(paths)
    for up, p in zip(inputs, predictions):  # transcripts name their clip: the upload, not the temp file
        if "audio" in p:
            p["audio"] = up.name
    return JSONResponse({"predictions": predictions})


async def _read_body(request: Request, cap: int) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > cap:
        raise BadRequest(413, f"request body of {int(length):,} bytes; the limit is {cap:,} (--max-body-mb)")
    chunks, seen = [], 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > cap:
            raise BadRequest(413, f"request body over {cap:,} bytes (--max-body-mb)")
        chunks.append(chunk)
    return b"".join(chunks)


async def _files(request: Request, body: bytes, limits: Limits) -> list[tuple[str, bytes]]:
    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=limits.max_inputs + 1,
                                                         max_fields=limits.max_inputs + 1)
    except Exception as err:  # noqa: BLE001  (a malformed multipart body)
        raise BadRequest(400, f"cannot read the multipart body ({str(err).splitlines()[0][:200]})") from None
    files = [(v.filename or k, await v.read()) for k, v in form.multi_items() if isinstance(v, UploadFile)]
    await form.close()
    return files
