"""EfficientNet-Lite as an image classifier (a torch module; the image task imports it when it
builds or loads one, so reading and checking images needs no torch)."""
from __future__ import annotations

import torch
from torch import nn


class EfficientNetClassifier(nn.Module):
    """EfficientNet-Lite body (pooled 1280-d features) + a new linear head; returns .logits."""

    base_model_prefix = "body"
    lora_targets = ["_expand_conv", "_project_conv", "_conv_head"]  # LoRA on the 1x1 convolutions

    def __init__(self, arch: str, n_classes: int):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        self.arch = arch
        # image_size=None: 'same' padding computed per input, right at any --set data.image_size
        self.body = EfficientNet.from_name(arch, image_size=None)
        plain_pointwise(self.body)
        for module in self.body.modules():
            if isinstance(module, nn.BatchNorm2d):
                # The TF port uses momentum 0.01, made for a million ImageNet steps: in a fine-tuning
                # run of a few hundred steps the running statistics never catch up with the new data
                # (from random init, evaluation stayed at chance while training loss fell to 0.7).
                module.momentum = 0.1
        features = self.body._fc.in_features
        self.body._fc = nn.Identity()
        self.classifier = nn.Linear(features, n_classes)

    def forward(self, pixel_values: torch.Tensor, labels=None):
        from transformers.modeling_outputs import ImageClassifierOutput
        return ImageClassifierOutput(logits=self.classifier(self.body(pixel_values)))


def plain_pointwise(module: nn.Module) -> None:
    """1x1 stride-1 convolutions need no padding: make them plain nn.Conv2d (same weights), which
    PEFT's LoRA can wrap (it rebuilds the layer type for its A/B matrices)."""
    for name, child in module.named_children():
        pointwise = tuple(child.kernel_size) == (1, 1) and tuple(child.stride) == (1, 1) \
            if isinstance(child, nn.Conv2d) else False
        if pointwise and type(child) is not nn.Conv2d:
            plain = nn.Conv2d(child.in_channels, child.out_channels, 1, groups=child.groups,
                              bias=child.bias is not None)
            plain.load_state_dict(child.state_dict())
            setattr(module, name, plain)
        else:
            plain_pointwise(child)
