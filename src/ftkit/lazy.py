"""Heavy modules imported on first use, so reading and checking data does not pay for them.

    from ftkit.lazy import torch      # torch loads at the first `torch.something`, not here

`ftkit fit` refuses bad data before torch (~2 s to import on a small CPU) is loaded: the task
modules that read and validate data name torch this way; everything else imports it plainly.
"""
from __future__ import annotations

import functools
import importlib
import types


class LazyModule(types.ModuleType):
    """Stands in for a module; every attribute lookup goes to the real one, imported then."""

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self.__name__), attr)

    def __dir__(self):
        return dir(importlib.import_module(self.__name__))


torch = LazyModule("torch")
nn = LazyModule("torch.nn")
F = LazyModule("torch.nn.functional")


def inference_mode(fn):
    """`@torch.inference_mode()` for a module that must load without torch: entered per call."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with torch.inference_mode():
            return fn(*args, **kwargs)
    return run
