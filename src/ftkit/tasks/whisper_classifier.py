"""ftkit's Whisper audio classifier: Whisper's encoder + a linear head (torch modules). The audio
task imports this when it builds or loads one, so reading and checking clips needs no torch."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Optional

import torch
from torch import nn

from ftkit.strategies.groups import MATCHERS, LayerGroups


class WhisperClassifierConfig:
    """Names ftkit's Whisper classifier for the registries keyed by `config.model_type` (its
    layer-group matcher below). Not Whisper's own config: that one says encoder-decoder, which
    the probe and frozen-encoder strategies read as "no new head"."""

    model_type = "ftkit-whisper-classifier"
    is_encoder_decoder = False

    def to_dict(self) -> dict:  # PEFT reads the model's config as a dict
        return {"model_type": self.model_type}


class SinusoidalPositions(nn.Embedding):
    """Whisper's fixed encoder positions; re-initialised as sinusoids, not N(0, 1), by
    `model.init=random` (ftkit.models.loading.randomize calls reset_parameters)."""

    def reset_parameters(self) -> None:
        from transformers.models.whisper.modeling_whisper import sinusoids

        with torch.no_grad():
            self.weight.copy_(sinusoids(self.num_embeddings, self.embedding_dim))


class WhisperClassifier(nn.Module):
    """Whisper's encoder + a linear head on the clip's mean encoder state; returns .logits."""

    base_model_prefix = "encoder"
    lora_targets = ["q_proj", "v_proj"]  # PEFT's choice for Whisper's attention

    def __init__(self, encoder: nn.Module, n_classes: int):
        super().__init__()
        self.config = WhisperClassifierConfig()
        old = encoder.embed_positions
        encoder.embed_positions = SinusoidalPositions(old.num_embeddings, old.embedding_dim)
        encoder.embed_positions.load_state_dict(old.state_dict())
        encoder.embed_positions.requires_grad_(False)  # fixed in Whisper too
        self.encoder = encoder
        self.classifier = nn.Linear(encoder.config.d_model, n_classes)

    def forward(self, input_features: torch.Tensor, attention_mask: Optional[torch.Tensor] = None, labels=None):
        from transformers.modeling_outputs import SequenceClassifierOutput
        from transformers.models.whisper.modeling_whisper import WhisperModel

        # SpecAugment exactly as WhisperModel does it (training only; masks fall inside the clip)
        state = SimpleNamespace(config=self.encoder.config, training=self.training)
        features = input_features.clone() if self.training else input_features  # masking writes in place
        features = WhisperModel._mask_input_features(state, features, attention_mask=attention_mask)
        hidden = self.encoder(features).last_hidden_state  # (batch, positions, d_model)
        return SequenceClassifierOutput(logits=self.classifier(clip_mean(hidden, attention_mask)))


def clip_mean(hidden: torch.Tensor, frames: Optional[torch.Tensor]) -> torch.Tensor:
    """(batch, positions, d) -> (batch, d): the mean over the positions holding the clip.
    `frames` (batch, mel frames) marks the clip's frames; the encoder's stride-2 convolution
    makes one position of two frames. Every position attends to the whole window, padding
    included, as in pretraining; only the pooling leaves the padding out."""
    if frames is None:
        return hidden.mean(dim=1)
    stride = frames.shape[1] // hidden.shape[1]
    keep = frames[:, ::stride][:, :hidden.shape[1]].to(hidden.dtype)  # (batch, positions)
    keep[:, 0] = 1  # never an empty mean
    return (hidden * keep.unsqueeze(-1)).sum(dim=1) / keep.sum(dim=1, keepdim=True)


def whisper_classifier_groups(model: nn.Module) -> LayerGroups:
    """Bottom to top: the convolutions and positions; the encoder blocks (the final norm with
    the last); the head."""
    n = len(model.encoder.layers)
    embeddings, blocks, head = [], [[] for _ in range(n)], []
    for name, param in model.named_parameters():
        if name.startswith("encoder.layers."):
            blocks[int(name.split(".")[2])].append((name, param))
        elif name.startswith("encoder.layer_norm."):
            blocks[-1].append((name, param))
        elif name.startswith("encoder."):
            embeddings.append((name, param))
        else:
            head.append((name, param))
    return LayerGroups(embeddings, blocks, head)


MATCHERS.register(WhisperClassifierConfig.model_type, "Whisper encoder + classification head: encoder blocks")(
    whisper_classifier_groups)
