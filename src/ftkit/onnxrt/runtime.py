"""onnxruntime side: `load_onnx(folder)` returns the ONNX predictor of the folder's task, with the
torch predictor's interface and output format (predict, predict_frame, read, evaluate, labels, meta).

Each predictor (runtime_text.py, runtime_media.py, runtime_speech.py) subclasses the task's torch
predictor and overrides only the methods that run the model, so the task's reading, tokenising,
windows, aggregation and temperature scaling are shared code. Text and NER predictors import no
torch (tokenizers + onnxruntime only); image neither; audio and speech need transformers' feature
extractors, which import torch.
"""
from __future__ import annotations

import importlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ftkit.errors import ConfigError, ModelLoadError

# task -> (module, class) of its ONNX predictor; a module is imported only when its task is loaded
PREDICTORS = {"text-classification": ("runtime_text", "OnnxTextClassifier"),
              "text-multilabel": ("runtime_text", "OnnxTextMultiLabeler"),
              "text-regression": ("runtime_text", "OnnxTextRegressor"),
              "token-classification": ("runtime_text", "OnnxTagger"),
              "image-classification": ("runtime_media", "OnnxImageClassifier"),
              "audio-classification": ("runtime_media", "OnnxAudioClassifier"),
              "speech-recognition": ("runtime_speech", "OnnxTranscriber")}
NUMPY_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32,
               "tensor(double)": np.float64, "tensor(bool)": np.bool_, "tensor(uint8)": np.uint8}


def load_onnx(folder: Path, threads: Optional[int] = None):
    """The ONNX predictor of an `export_onnx` folder (ftkit.json with "runtime": "onnx")."""
    folder = Path(folder)
    meta = read_meta(folder)
    if meta.get("runtime") != "onnx" or "onnx" not in meta:
        raise ConfigError(f"{folder}: not an ONNX export (ftkit.json has no \"runtime\": \"onnx\"); "
                          "make one with `ftkit export --format onnx`")
    entry = PREDICTORS.get(meta.get("task"))
    if entry is None:
        raise ConfigError(f"{folder}: no ONNX predictor for task {meta.get('task')!r} "
                          f"(choose from {', '.join(PREDICTORS)})")
    module, name = entry
    cls = getattr(importlib.import_module(f"ftkit.onnxrt.{module}"), name)
    return cls(folder, threads=threads)


def read_meta(folder: Path) -> dict:
    try:
        return json.loads((folder / "ftkit.json").read_text())
    except FileNotFoundError:
        raise ModelLoadError(f"{folder}: no ftkit.json (not a saved ftkit model)") from None
    except ValueError as err:
        raise ModelLoadError(f"{folder / 'ftkit.json'}: not valid JSON ({err})") from None


def default_threads() -> int:
    """The CPUs this process may use (its affinity mask, e.g. a container's or taskset's share),
    else os.cpu_count: onnxruntime's own default counts the machine's physical cores."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class Session:
    """One onnxruntime CPU session; `run(feeds)` casts each input to the dtype the graph declares
    (feature extractors hand out int32 masks, the graph takes int64) and drops inputs it lacks.

    A batch of at least 2 x ROWS_PER_PART rows is split by rows into one part per thread, and the
    parts run at once on a second, single-threaded session (onnxruntime's run releases the GIL and
    is thread-safe): a matmul on one core runs near its peak, while two intra-op threads on one
    batch gave fp32 1.58x and int8 only 1.42x of one thread (bench/RESULTS.md "Serving"). A small
    batch (one client's request, where latency counts) runs on the intra-op threads. Every ftkit
    graph is batch-major in its inputs and outputs, so the parts' outputs concatenate back in order;
    a row's result does not depend on the rows beside it, except under dynamic int8 quantization,
    whose activation scale is taken over the whole batch (as it is with any other batching).
    """

    ROWS_PER_PART = 8

    def __init__(self, path: Path, threads: Optional[int] = None):
        self.path, self.threads = path, threads or default_threads()
        self.session = self._open(self.threads)
        self.inputs = {i.name: NUMPY_TYPES.get(i.type) for i in self.session.get_inputs()}
        self._single = None  # the single-threaded session the parts of a split batch share, opened on first use
        self._pool: Optional[ThreadPoolExecutor] = None
        self._lock = threading.Lock()
        self.split_batches = 0  # batches run as parts on the single-threaded session

    def _open(self, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1  # the graph's nodes run one after another
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: no per-node warnings on stderr
        # No busy-waiting between calls: behind `ftkit serve` (2 cores, 64 clients) spinning threads took the
        # CPU the server and its clients needed (50 -> see bench/RESULTS.md "Serving")
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001  (onnxruntime raises its own Fail / InvalidGraph kinds)
            raise ModelLoadError(f"{self.path}: onnxruntime cannot load the graph ({str(err).splitlines()[0]})") from None

    def run(self, feeds: dict) -> list[np.ndarray]:
        given = {k: np.asarray(v, dtype=self.inputs[k]) for k, v in feeds.items() if k in self.inputs}
        missing = set(self.inputs) - set(given)
        if missing:
            raise ModelLoadError(f"the ONNX graph needs inputs {sorted(missing)} that the preprocessing did not make")
        rows = len(next(iter(given.values()))) if given else 0
        parts = min(self.threads, rows // self.ROWS_PER_PART)
        if parts < 2:
            return self.session.run(None, given)
        single, pool = self._parallel()
        self.split_batches += 1
        bounds = np.linspace(0, rows, parts + 1).astype(int)
        pieces = [{k: v[a:b] for k, v in given.items()} for a, b in zip(bounds[:-1], bounds[1:])]
        outs = list(pool.map(lambda piece: single.run(None, piece), pieces))
        return [np.concatenate(out) for out in zip(*outs)]

    def _parallel(self):
        with self._lock:
            if self._single is None:
                self._single = self._open(1)
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="ftkit-onnx")
        return self._single, self._pool


def onnx_session(folder: Path, meta: dict, threads: Optional[int]) -> Session:
    return Session(folder / meta["onnx"]["file"], threads)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis in float32, as the torch predictors compute it."""
    x = logits.astype(np.float32)
    x = np.exp(x - x.max(axis=-1, keepdims=True))
    return x / x.sum(axis=-1, keepdims=True)


def pad_ids(ids: list[np.ndarray], pad_id: int, types: Optional[list[np.ndarray]] = None) -> dict[str, np.ndarray]:
    """(batch, longest) input_ids padded with pad_id and their attention mask (TextEncoded.batch);
    with `types` (text pairs) their token_type_ids too, padded with 0."""
    width = max(len(x) for x in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, x in enumerate(ids):
        input_ids[row, :len(x)], mask[row, :len(x)] = x, 1
    feeds = {"input_ids": input_ids, "attention_mask": mask}
    if types is not None:
        feeds["token_type_ids"] = np.zeros((len(ids), width), dtype=np.int64)
        for row, t in enumerate(types):
            feeds["token_type_ids"][row, :len(t)] = t
    return feeds


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """One sigmoid per label in float32 (multi-label), as the torch predictors compute it."""
    x = logits.astype(np.float32)
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


def longest_first_probs(run: Callable[[np.ndarray], np.ndarray], lengths: np.ndarray, batch_size: int,
                        n_classes: int, multi_label: bool = False, raw: bool = False) -> np.ndarray:
    """(n, classes) softmax (`multi_label`: sigmoid; `raw`: the logits, a regression head's outputs)
    of `run(indices)` (the logits of those rows),
    longest rows first so batches carry little padding: the batches tasks.base.longest_first_proba makes."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    probs = np.zeros((len(order), n_classes), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        logits = run(idx)
        probs[idx] = logits.astype(np.float32) if raw else sigmoid(logits) if multi_label else softmax(logits)
    return probs


class NotExportable:
    """An ONNX predictor holds no torch weights: `ftkit export` of it has nothing to write."""

    def export(self, folder: Path) -> None:
        raise ConfigError(f"{getattr(self, 'folder', 'this model')} is already an ONNX export; export the "
                          "run or the torch model folder it came from instead")
