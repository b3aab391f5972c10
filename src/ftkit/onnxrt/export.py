"""`export_onnx`: a saved ftkit model folder -> model.onnx (optionally int8) + the files its
preprocessing reads + ftkit.json, checked against torch on real inputs before it is called done.

The check compares probabilities of the whole pipeline (the torch predictor against the ONNX one,
both reading the same file), so a graph that traced a shape-specific branch, or a tokenizer the
Rust adapter does not reproduce, fails the export instead of shipping.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from ftkit.errors import ConfigError, FtkitError
from ftkit.io import write_json
from ftkit.onnxrt.runtime import load_onnx, read_meta
from ftkit.onnxrt.samples import WRITERS
from ftkit.tasks import get_task

log = logging.getLogger(__name__)

QUANTIZE = ("int8",)
TOLERANCE = 1e-4  # max abs difference of fp32 probabilities, ONNX vs torch
MODEL_FILE = "model.onnx"
# ops whose weights dynamic int8 quantizes (Conv -> ConvInteger: onnxruntime 1.32's CPU kernel takes
# int8 weights; the tiny ResNet came out 7% smaller, probabilities within 0.01)
QUANTIZED_OPS = ["MatMul", "Gemm", "Conv", "Gather", "Attention", "LSTM", "EmbedLayerNormalization"]


def export_onnx(model_dir: Path, out: Path, *, quantize: Optional[str] = None, check_data: Optional[Path] = None,
                columns: Optional[dict] = None) -> dict:
    """Write the ONNX export of `model_dir` into `out` (an existing empty folder; the caller makes
    the move into place atomic) and return the export record (also written as out/export.json):
    parity with torch, sizes, and with quantize="int8" the main metric before and after."""
    if quantize is not None and quantize not in QUANTIZE:
        raise ConfigError(f"--quantize: {quantize!r} is not a supported quantization (choose from {', '.join(QUANTIZE)})")
    model_dir, out = Path(model_dir), Path(out)
    meta = read_meta(model_dir)
    task = get_task(meta["task"])
    from ftkit.onnxrt.graphs import OPSET, build_graph, write_graph

    torch_pred = task.predictor(model_dir)
    graph = build_graph(task.name, torch_pred)
    with tempfile.TemporaryDirectory(prefix="ftkit-onnx-") as scratch:
        scratch = Path(scratch)
        write_graph(graph, out / MODEL_FILE, OPSET)
        fp32_size = (out / MODEL_FILE).stat().st_size
        _write_support(task.name, torch_pred, out, {"file": MODEL_FILE, "quantized": None, "opset": OPSET,
                                                    "inputs": graph.inputs, "outputs": graph.outputs})
        examples, labelled = _check_examples(task.name, torch_pred, check_data, columns, scratch)
        torch_metrics, torch_out = _outputs(task.name, torch_pred, examples, labelled)
        _, onnx_out = _outputs(task.name, load_onnx(out), examples, labelled)
        diff = _max_diff(torch_out, onnx_out)
        if not diff <= TOLERANCE:  # nan fails too
            raise FtkitError(f"ONNX export of {model_dir} failed its parity check: probabilities differ from torch "
                             f"by up to {diff:.3g} (> {TOLERANCE:g}) on {len(examples)} examples")
        record = {"parity": {"max_abs_diff": diff, "examples": len(examples), "tolerance": TOLERANCE,
                             "inputs": str(check_data) if check_data else "built-in samples"},
                  "size_bytes": {"fp32": fp32_size}, "opset": OPSET, "quantized": quantize}
        if quantize:
            record.update(_quantize(task, out, scratch, examples, labelled, torch_out, torch_metrics))
            record["size_bytes"]["int8"] = (out / MODEL_FILE).stat().st_size
    write_json(out / "export.json", record)
    return record


# What each task's graph needs beside it: a text tokenizer, or an audio feature extractor (plus the
# CTC settings for transcripts); images carry their preprocessing in ftkit.json.
SUPPORT = {"text-classification": "tokenizer", "text-multilabel": "tokenizer", "text-regression": "tokenizer",
           "token-classification": "tokenizer", "image-classification": "none",
           "audio-classification": "features", "speech-recognition": "ctc"}


def _write_support(task: str, pred, out: Path, onnx: dict) -> None:
    """What inference reads besides the graph: tokenizer / feature extractor files and ftkit.json
    (the source's meta, adapter merged, plus the runtime and the graph's description)."""
    from ftkit.models.loading import quiet_transformers

    support = SUPPORT[task]
    if support == "tokenizer":
        from ftkit.onnxrt.tokenizer import tokenizer_settings

        onnx = {**onnx, "tokenizer": tokenizer_settings(pred.tokenizer)}
        with quiet_transformers():
            pred.tokenizer.save_pretrained(out)
    elif support in ("features", "ctc"):
        with quiet_transformers():
            pred.proc.save_pretrained(out)
    if support == "ctc":
        config = pred.model.config
        onnx = {**onnx, "ctc": {"blank": config.pad_token_id, "reduction": config.ctc_loss_reduction,
                                "zero_infinity": bool(config.ctc_zero_infinity)}}
    meta = {**pred.meta, "adapter": False, "merged_adapter": bool(pred.meta.get("adapter")), "runtime": "onnx",
            "onnx": onnx}
    write_json(out / "ftkit.json", meta)


def _check_examples(task: str, pred, check_data: Optional[Path], columns: Optional[dict], scratch: Path):
    """(examples, labelled): the labelled check file read as the predictor reads it, else the
    built-in samples written in the task's input format (samples.py) and read unlabelled."""
    if check_data is not None:
        return pred.read(str(check_data), columns, labelled=True), True
    return pred.read(str(WRITERS[task](scratch, pred.meta)), None, labelled=False), False


def _outputs(task: str, pred, examples, labelled: bool):
    """(metrics or None, probabilities): evaluate() on labelled data, else the probabilities only."""
    if SUPPORT[task] == "ctc":
        from ftkit.onnxrt.speech_check import speech_outputs

        return speech_outputs(pred, examples, labelled)
    if labelled:
        return pred.evaluate(examples)
    if get_task(task).input_kind == "words":
        return None, pred.word_probabilities(examples)
    return None, pred.predict_proba(examples)


def _flat(outputs) -> np.ndarray:
    outputs = getattr(outputs, "probs", outputs)  # multi-label: LabelScores (thresholds are the same on both)
    if isinstance(outputs, np.ndarray):
        return outputs.astype(np.float64).ravel()
    parts = [np.asarray(o, dtype=np.float64).ravel() for o in outputs]
    return np.concatenate(parts) if parts else np.zeros(0)


def _max_diff(a, b) -> float:
    a, b = _flat(a), _flat(b)
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a - b).max()) if a.size else 0.0


def _quantize(task, out: Path, scratch: Path, examples, labelled: bool, torch_out, torch_metrics) -> dict:
    """Dynamic int8 (weights QInt8, activations quantized per batch at run time) in place of the
    fp32 graph; the main metric before (the torch model's) and after on the check data (None
    without labels)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = scratch / "fp32.onnx"
    shutil.move(out / MODEL_FILE, fp32)
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)  # onnxruntime logs a line per tensor it leaves unquantized
    try:
        quantize_dynamic(str(fp32), str(out / MODEL_FILE), weight_type=QuantType.QInt8,
                         op_types_to_quantize=QUANTIZED_OPS,
                         extra_options={"MatMulConstBOnly": True})  # weights only, not activation x activation
    finally:
        logging.disable(previous)
    meta = read_meta(out)
    meta["onnx"]["quantized"] = "int8"
    write_json(out / "ftkit.json", meta)
    metrics, int8_out = _outputs(task.name, load_onnx(out), examples, labelled)
    metric = task.default_metric
    record = {"metric": metric, "max_abs_diff": _max_diff(torch_out, int8_out),
              "accuracy_before": torch_metrics[metric] if torch_metrics else None,
              "accuracy_after": metrics[metric] if metrics else None}
    if not labelled:
        record["note"] = "no labelled check data (--check-data): the metric before and after is not measured"
    log.info("int8: %s %s -> %s", metric, record["accuracy_before"], record["accuracy_after"])
    return {"int8": record}
