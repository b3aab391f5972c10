"""Tasks: each contributes reading, preprocessing, head, loss, metrics and prediction format.

The training loop, run folder and strategies are shared; a task is one module registered here.
"""
import importlib

from ftkit.registry import Registry

TASKS: Registry = Registry("task")

# The module of each built-in task: `get_task` imports only the one asked for, so a task whose
# module loads without torch (text classification) checks its data before torch is imported.
BUILTIN = {"text-classification": "text_classification", "token-classification": "token_classification",
           "image-classification": "image_classification", "audio-classification": "audio_classification",
           "speech-recognition": "speech_recognition", "text-multilabel": "text_classification",
           "image-multilabel": "image_multilabel", "text-regression": "text_classification",
           "image-regression": "image_regression"}


def get_task(name: str):
    load_builtin(name)
    return TASKS.get(name)()  # tasks are registered as classes; instances hold no state


def load_builtin(name: str | None = None) -> None:
    # Imported on demand so `ftkit --help` does not pay for torch/transformers; an unknown name
    # loads them all, so the registry's error lists every task.
    for module in [BUILTIN[name]] if name in BUILTIN else BUILTIN.values():
        importlib.import_module(f"ftkit.tasks.{module}")


def tasks_with(capability: str) -> list[str]:
    """Names of the registered tasks declaring `capability` (see tasks.base.Capabilities); loads
    every built-in task, so it is for error messages and listings, not the hot path."""
    load_builtin()
    names = [*BUILTIN, *(n for n in TASKS.names() if n not in BUILTIN)]  # built-ins in their usual order
    return [name for name in names if getattr(TASKS.get(name).capabilities, capability)]
