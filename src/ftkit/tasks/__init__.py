"""Tasks: each contributes reading, preprocessing, head, loss, metrics and prediction format.

The training loop, run folder and strategies are shared; a task is one module registered here.
"""
from ftkit.registry import Registry

TASKS: Registry = Registry("task")


def get_task(name: str):
    _load_builtin()
    return TASKS.get(name)()  # tasks are registered as classes; instances hold no state


def _load_builtin() -> None:
    # Imported on demand so `ftkit --help` does not pay for torch/transformers.
    from ftkit.tasks import (audio_classification, image_classification, speech_recognition,  # noqa: F401
                             text_classification, token_classification)
