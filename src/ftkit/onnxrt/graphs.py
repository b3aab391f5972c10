"""The torch side of an ONNX export: per task, the module whose outputs the graph holds, example
inputs from the task's own preprocessing, and which axes vary (batch, sequence, samples).
Imported only at export time (it needs torch)."""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ftkit.errors import ConfigError

OPSET = 17  # LayerNormalization is an ONNX op from 17 on; onnxruntime 1.14+ runs it


@dataclass
class Graph:
    module: nn.Module  # returns the logits (CTC: and the frames per clip)
    args: tuple  # example inputs, in `inputs` order
    inputs: list[str]
    outputs: list[str]
    axes: dict[str, dict[int, str]]  # dynamic axes of each input and output


class Outputs(nn.Module):
    """model(**named inputs).logits as a plain tensor: what torch.onnx traces."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *args):
        out = self.model(**dict(zip(self.names, args)))
        return out.logits if hasattr(out, "logits") else out


class CtcOutputs(Outputs):
    """CTC logits and the frames each clip fills (the loss and greedy decoding need both)."""

    def forward(self, input_values, attention_mask):
        logits = self.model(input_values=input_values, attention_mask=attention_mask).logits
        return logits, self.model._get_feat_extract_output_lengths(attention_mask.sum(-1))


def merged(pred) -> nn.Module:
    """The predictor's model with a LoRA adapter merged into its base (as the export()s do)."""
    model = copy.deepcopy(pred.model).merge_and_unload() if pred.meta.get("adapter") else pred.model
    return model.eval()


def example_clips(rate: int, seconds: tuple = (1.0, 0.6)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(int(rate * s))).astype(np.float32) for s in seconds]


def text_graph(pred, model: nn.Module, per_token: bool) -> Graph:
    """Text pairs (several text columns) trace the pair encoding: token_type_ids become an input
    when the tokenizer makes them (BERT), so the graph tells the two sides apart as torch does."""
    pair = len(pred.meta.get("text_columns") or ()) > 1
    enc = pred.tokenizer(["the movie was good and fun", "bad"], ["bad", "a fun film"] if pair else None,
                         padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if pair and "token_type_ids" in enc else [])
    seq = {0: "batch", 1: "sequence"}
    return Graph(Outputs(model, names), tuple(enc[n] for n in names), names, ["logits"],
                 {**{n: seq for n in names}, "logits": seq if per_token else {0: "batch"}})


def image_graph(pred, model: nn.Module) -> Graph:
    size = pred.prep.size
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    return Graph(Outputs(model, ["pixel_values"]), (x,), ["pixel_values"], ["logits"],
                 {"pixel_values": {0: "batch"}, "logits": {0: "batch"}})


def audio_graph(pred, model: nn.Module) -> Graph:
    proc = pred.proc
    window = proc.max_seconds or 1.0
    inputs = proc.inputs(example_clips(proc.rate, (min(1.0, window), min(0.6, window * 0.6))))
    names = list(inputs)
    varying = {0: "batch"} if proc.kind == "whisper" else {0: "batch", 1: "samples"}  # Whisper: a fixed window
    return Graph(Outputs(model, names), tuple(inputs[n] for n in names), names, ["logits"],
                 {**{n: varying for n in names}, "logits": {0: "batch"}})


def speech_graph(pred, model: nn.Module) -> Graph:
    from ftkit.tasks.speech_models import speech_batch

    if pred.meta.get("family") != "ctc":
        raise ConfigError("ONNX export is not available for Whisper speech recognition: it generates text token "
                          "by token (an encoder-decoder with a key/value cache and beam search), which this export "
                          "does not cover; export CTC models (wav2vec2, HuBERT, WavLM) or keep the torch runtime")
    batch = speech_batch(pred.proc, example_clips(pred.proc.rate), None)
    names = ["input_values", "attention_mask"]
    return Graph(CtcOutputs(model, names), tuple(batch[n] for n in names), names, ["logits", "frames"],
                 {"input_values": {0: "batch", 1: "samples"}, "attention_mask": {0: "batch", 1: "samples"},
                  "logits": {0: "batch", 1: "frames"}, "frames": {0: "batch"}})


BUILDERS = {"text-classification": lambda p, m: text_graph(p, m, per_token=False),
            "text-multilabel": lambda p, m: text_graph(p, m, per_token=False),  # logits; sigmoid in the runtime
            "text-regression": lambda p, m: text_graph(p, m, per_token=False),  # standardised value; scaled back in the runtime
            "token-classification": lambda p, m: text_graph(p, m, per_token=True),
            "image-classification": image_graph, "audio-classification": audio_graph,
            "speech-recognition": speech_graph}


def build_graph(task: str, pred) -> Graph:
    builder = BUILDERS.get(task)
    if builder is None:
        raise ConfigError(f"ONNX export is not available for task {task!r} (choose from {', '.join(BUILDERS)})")
    return builder(pred, merged(pred))


def write_graph(graph: Graph, path: Path, opset: int = OPSET) -> None:
    """torch.onnx's TorchScript exporter (dynamo=False): a few seconds less per model than the
    torch.export one on small CPUs, and dynamic axes by name; weights inside the file."""
    module = graph.module.eval()  # export restores the wrapper's mode onto the model: keep it eval
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about shape-dependent Python branches
        torch.onnx.export(module, graph.args, str(path), dynamo=False, opset_version=opset,
                          input_names=graph.inputs, output_names=graph.outputs, dynamic_axes=graph.axes,
                          do_constant_folding=True)
    graph.module.model.eval()
