"""Progress display for long steps: a rich bar on a terminal, nothing in quiet mode."""
from __future__ import annotations

import logging

log = logging.getLogger("ftkit")


class NoProgress:
    def start(self, total: int, done: int) -> None: ...
    def update(self, step: int, loss: float, samples_per_second: float) -> None: ...
    def note(self, text: str) -> None:
        log.debug(text)

    def stop(self) -> None: ...


class RichProgress(NoProgress):
    """Steps done / total with loss, samples/s and ETA."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("loss {task.fields[loss]:.4f}"),
                            TextColumn("{task.fields[sps]:.1f} samples/s"), TextColumn("ETA"),
                            TimeRemainingColumn(), console=self.console)
        self.task = None

    def start(self, total: int, done: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task("train", total=total, completed=done, loss=float("nan"), sps=0.0)

    def update(self, step: int, loss: float, samples_per_second: float) -> None:
        self.bar.update(self.task, completed=step, loss=loss, sps=samples_per_second)

    def note(self, text: str) -> None:
        self.bar.console.print(text)

    def stop(self) -> None:
        self.bar.stop()
