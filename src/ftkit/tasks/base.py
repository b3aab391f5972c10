"""What every task hands the shared engine."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

import numpy as np
import torch


class Encoded(Protocol):
    """A split turned into model inputs; the training loop only needs these three things."""

    lengths: np.ndarray  # (n,) input sizes, for length-grouped batches

    def __len__(self) -> int: ...

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]: ...


@dataclass
class Splits:
    """Validated examples per split plus the record of how they were made."""

    train: Any
    validation: Optional[Any]
    test: Optional[Any]
    labels: list[str]
    record: dict = field(default_factory=dict)  # saved as splits.json

    def named(self) -> dict[str, Any]:
        return {k: v for k, v in (("train", self.train), ("validation", self.validation),
                                  ("test", self.test)) if v is not None}
