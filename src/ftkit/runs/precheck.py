"""Bad input refused before torch is imported (importing it takes seconds on a small CPU).

`ftkit fit` (and the first run of cv / --seeds) calls this before it imports the engine. Nothing
here decides anything of its own: it calls, earlier, the functions `fit` runs before it writes a
run folder (runs/fit.py: `_fit` and `prepare`): the run folder's state, then the task's reading,
validation and splitting, the fast data doctor's leakage refusal and the eval settings. So an
error here is the one `fit` would raise, word for word. Nothing is written; input that passes
costs one extra read of the tables.

The outer loops check the same way before their first fit: `fit --baseline` its fine-tuned run,
`compare` its variants and then its first strategy's run (`runs.compare.precheck_compare`), `tune`
and `advise` the data their runs share (`precheck_data`: their runs live in folders of their own).

A task whose module needs torch to load (images, audio) gains nothing from looking early and is
left to `fit`; so are resumed runs (their data passed when they started) and runs tracked in
MLflow (`fit` checks the tracking URI first).
"""
from __future__ import annotations

import contextlib
import logging
import sys

from ftkit.config import FitConfig
from ftkit.distributed import check_local, wanted


def precheck(cfg: FitConfig, *, resume: bool, overwrite: bool) -> None:
    """Raise what `fit_run(cfg, resume=resume, overwrite=overwrite)` would raise on bad input."""
    if resume or cfg.tracking.backend != "none":
        return
    if wanted(cfg):  # --workers N: what this machine cannot place is refused before torch loads
        check_local(cfg)
    if cfg.out:  # without --out, fit makes a new folder
        from ftkit.runs.rundir import RunDir

        RunDir(cfg.out).check(resume, overwrite)
    had_torch = "torch" in sys.modules
    from ftkit.tasks import get_task

    task = get_task(cfg.task)
    if "torch" in sys.modules and not had_torch:  # torch is loaded now anyway: let fit check
        return
    from ftkit.data.doctor import fast_report, refuse_leakage
    from ftkit.data.splits import limit_train
    from ftkit.evaluation.honest import check_eval

    with _silenced():  # fit logs the same warnings (skipped rows, doctor findings) itself
        splits = limit_train(task.prepare_data(cfg), cfg)
        if not cfg.data.allow_leakage:
            refuse_leakage(fast_report(cfg, splits))
        check_eval(task, cfg, splits)


def precheck_data(cfg: FitConfig, *, resume: bool = False) -> None:
    """`precheck` of the data alone (tune, advise): the config's own --out is no folder they write."""
    precheck(cfg.model_copy(update={"out": None}), resume=resume, overwrite=False)


@contextlib.contextmanager
def _silenced():
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)
