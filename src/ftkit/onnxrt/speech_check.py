"""The export-time parity check for CTC speech recognition: frame probabilities of the torch
Transcriber against the ONNX one (transcripts are argmaxes of them), plus WER/CER on labelled data."""
from __future__ import annotations

import numpy as np
import torch

from ftkit.onnxrt.runtime_speech import OnnxTranscriber
from ftkit.tasks.speech_models import speech_batch
from ftkit.tasks.speech_predict import BATCH


def speech_outputs(pred, examples, labelled: bool):
    """(metrics or None, per clip frame probabilities)."""
    metrics = pred.evaluate(examples)[0] if labelled else None
    if isinstance(pred, OnnxTranscriber):
        return metrics, pred.frame_probabilities(examples)
    return metrics, torch_frame_probabilities(pred, examples)


@torch.inference_mode()
def torch_frame_probabilities(pred, examples) -> list[np.ndarray]:
    clips = pred._encoded(examples).clips
    out = []
    for start in range(0, len(clips), BATCH):
        batch = speech_batch(pred.proc, clips[start:start + BATCH], None)
        logits = pred.model(input_values=batch["input_values"], attention_mask=batch["attention_mask"]).logits
        frames = pred.model._get_feat_extract_output_lengths(batch["attention_mask"].sum(-1))
        out += [p[:f] for p, f in zip(torch.softmax(logits.float(), dim=-1).numpy(), frames.tolist())]
    return out
