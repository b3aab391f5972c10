"""Progress lines for long passes over a split (feature and encoder caches): silent when a pass is
quick, otherwise about every tenth of the examples with the rate and the time left."""
from __future__ import annotations

import logging
import time

log = logging.getLogger("ftkit.progress")
QUIET_SECONDS = 5.0  # a pass shorter than this says nothing: a log line per 10% would be noise


class Progress:
    def __init__(self, total: int, what: str, unit: str = "examples"):
        self.total, self.what, self.unit = total, what, unit
        self.next, self.tick = max(1, total // 10), time.perf_counter()

    def __call__(self, done: int) -> None:
        if done < self.next or not done:
            return
        seconds = time.perf_counter() - self.tick
        self.next = done + max(1, self.total // 10)
        if seconds < QUIET_SECONDS:
            return
        left = seconds / done * (self.total - done)
        log.info("%s: %d/%d %s, %.2f s per %s%s", self.what, done, self.total, self.unit, seconds / done,
                 self.unit.rstrip("s"), f", ~{left / 60:.1f} min left" if left > 0 else "")
