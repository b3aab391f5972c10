"""Named points where the kill tests stop the process, as `kill -9` would.

`FTKIT_KILL_AT=stage` (or `stage:N`, the N-th time it is reached) sends SIGKILL to this process at
that point; unset (always, outside tests/test_kill_stages.py) a point costs one dict lookup. Each
point sits where the stage has done its work but not yet recorded it, the worst moment to die:
what it leaves must not look finished, and `--resume` must end with the metrics of a run that was
never killed.
"""
from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "FTKIT_KILL_AT"
STAGES = ("doctor", "zero-shot", "probe", "final-evaluation", "model-saving", "report", "export",
          "tune-trial", "auto-stage")
_reached: Counter = Counter()


def failpoint(stage: str) -> None:
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name != stage:
        return
    _reached[stage] += 1
    if _reached[stage] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
