"""The one training loop. Every task, strategy and outer loop (CV, tuning, comparisons) trains
through `train`; tasks supply the loss and the evaluation, the run folder receives the logs.

A step is one optimizer update (``grad_accum`` batches). The loop position (epoch, batch within
the epoch) is part of the checkpoint, and batch order is a pure function of (seed, epoch), so a
killed run resumes on exactly the batches it had left.

Data-parallel workers (ftkit.distributed, Ray Train) run this same loop with a `Team`: each trains
on its shard of every global batch (batches.shard), the gradients are summed before each optimizer
step, and only the leader (rank 0) validates, keeps the best weights, checkpoints and logs; its
stop decisions reach every worker, and an `on_validate` hook (a tuning trial's reports) is called on
every worker with the leader's record. Without a team nothing of that runs: one process is unchanged.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol

import numpy as np
import torch

from ftkit.config import TrainConfig
from ftkit.evaluation.metrics import HEADLINE, better
from ftkit.training import averaging, checkpoint
from ftkit.training.batches import epoch_batches, shard
from ftkit.training.device import autocast
from ftkit.training.optim import make_optimizer, make_schedule
from ftkit.training.regularize import with_penalty
from ftkit.training.rehearsal import with_rehearsal

log = logging.getLogger(__name__)

SUMMARY_KEYS = HEADLINE  # what a validation record keeps of the metrics
STOP_REASONS = (None, "early stopping", "time limit", "pruned")  # LoopState.stop_reason, as the leader sends it


class Team(Protocol):
    """The workers of one data-parallel run, as the loop sees them (ftkit.distributed implements it
    over torch.distributed). A protocol here, so the loop does not depend on Ray or the engine."""

    rank: int  # 0 is the leader
    size: int

    def sum_grads(self, params: list[torch.Tensor]) -> None:
        """Sum these parameters' gradients over the workers, in place (None counts as zeros)."""

    def total(self, value: torch.Tensor) -> float:
        """The sum of a scalar over the workers."""

    def from_leader(self, code: int) -> int:
        """The leader's value of a small integer, on every worker."""

    def share(self, value):
        """The leader's `value` (any picklable object; the others pass None), on every worker."""

    def seed_batch(self, seed: int, epoch: int, batch: int) -> None:
        """Seed the global generators (dropout, SpecAugment) for this batch of this worker."""

    def note_rows(self, rows: int) -> None:
        """Count the training rows this worker trained on (its throughput)."""


@dataclass
class LoopInputs:
    """What the loop trains on; the task fills `loss` and `evaluate`."""

    model: torch.nn.Module
    train_data: object  # tasks.base.Encoded
    val_data: Optional[object]
    train_probe: Optional[object]  # fixed training subset evaluated beside validation (overfitting)
    loss: Callable[[torch.nn.Module, dict], torch.Tensor]
    evaluate: Callable[[torch.nn.Module, object], dict]  # (model, data) -> metrics
    metric: str  # validation metric that picks the best model
    seed: int
    device: torch.device
    precision: str
    lr_scales: dict = field(default_factory=dict)  # from the strategy (LLRD)
    unfreeze: tuple = ()  # from the strategy: parameter names to unfreeze at epoch 1, 2, ...
    sample_weights: Optional[np.ndarray] = None  # train.oversample: per-row draw probabilities
    # Called with each validation record; returning True stops the run (tuning prunes a trial).
    on_validate: Optional[Callable[[dict], bool]] = None
    team: Optional[Team] = None  # data-parallel workers (ftkit.distributed); None: this process alone


def loop_inputs(task, cfg, model: torch.nn.Module, data: dict, labels: list[str], *, metric: str,
                device: torch.device, precision: str, params, weights: Optional[np.ndarray] = None,
                train_probe=None, reference=None, l2sp=None, on_validate=None, team=None) -> LoopInputs:
    """The inputs `fit` trains on (and `ftkit advise` profiles): the task's loss, plus rehearsal of
    the original task (`reference`) and the L2-SP pull (`l2sp`) when asked; validation on
    data["validation"] when present; the strategy's (`params`) lr scales and unfreezing."""
    loss = with_penalty(with_rehearsal(task.make_loss(cfg, data["train"]), reference, cfg.train.batch_size,
                                       cfg.seed), l2sp)
    return LoopInputs(
        model=model, train_data=data["train"], val_data=data.get("validation"), train_probe=train_probe,
        loss=loss, evaluate=lambda m, d: task.evaluate(m, d, labels, cfg.train.eval_batch_size, precision)[0],
        metric=metric, seed=cfg.seed, device=device, precision=precision, lr_scales=params.lr_scales,
        unfreeze=params.unfreeze, sample_weights=weights, on_validate=on_validate, team=team)


@dataclass
class LoopState:
    """Everything needed to continue where a run stopped; saved as JSON in each checkpoint."""

    epoch: int = 0
    batch: int = 0  # batches of `epoch` already trained on
    global_step: int = 0
    samples: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    best_value: Optional[float] = None
    best_step: Optional[int] = None
    best_epoch: Optional[float] = None
    bad_evals: int = 0
    stopped_early: bool = False
    stop_reason: Optional[str] = None  # "early stopping", "time limit" or "pruned"
    history: list = field(default_factory=list)  # one record per validation pass
    snapshots: list = field(default_factory=list)  # train.average: the best validations kept, best first
    average: Optional[dict] = None  # train.average: the soup's record, once made


def train_mode(model: torch.nn.Module) -> None:
    """model.train(), except BatchNorm layers whose weights are frozen: they keep their pretrained
    running statistics (eval mode), as a frozen layer should."""
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()


def _brief(metrics: dict) -> dict:
    return {k: metrics[k] for k in SUMMARY_KEYS if k in metrics}


class Loop:
    def __init__(self, inputs: LoopInputs, cfg: TrainConfig, run, progress):
        self.x, self.cfg, self.run, self.progress = inputs, cfg, run, progress
        self.team = inputs.team
        self.leader = inputs.team is None or inputs.team.rank == 0  # validates, checkpoints and logs
        self.batches_per_epoch = math.ceil(len(inputs.train_data) / cfg.batch_size)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / cfg.grad_accum)
        self.total_steps = max(1, math.ceil(cfg.epochs * self.steps_per_epoch))
        later = frozenset(name for names in inputs.unfreeze for name in names)
        self.optimizer = make_optimizer(inputs.model, cfg, inputs.device, inputs.lr_scales, later)
        self.scheduler = make_schedule(self.optimizer, cfg, self.total_steps)
        self.state = LoopState()
        self._window: list[float] = []  # losses since the last log record

    # ------------------------------------------------------------------ public
    def resume(self) -> bool:
        path = checkpoint.latest(self.run.checkpoints)
        if path is None:  # killed before the first checkpoint: start over, dropping its logs
            if self.leader:
                self.run.truncate_metrics(0)
            return False
        loop = checkpoint.restore(path, self.x.model, self.optimizer, self.scheduler)
        self.state = LoopState(**loop)
        if self.leader:
            self.run.truncate_metrics(self.state.global_step)
        log.info("resumed from %s (epoch %d, step %d)", path.name, self.state.epoch, self.state.global_step)
        return True

    def run_all(self) -> LoopState:
        s = self.state
        self.progress.start(self.total_steps, s.global_step)
        while s.global_step < self.total_steps and not s.stopped_early:
            self._train_epoch()
        self.progress.stop()
        if self.leader and self.cfg.restore_best and s.best_step is not None and self.run.best_weights.is_file():
            checkpoint.load_weights(self.x.model, self.run.best_weights)
            log.info("restored the best weights (step %d, %s %.4f)", s.best_step, self.x.metric, s.best_value)
            self._average()
        return s

    def _average(self) -> None:
        """train.average: the greedy soup of the best snapshots, scored on validation (averaging.py)."""
        if self.cfg.average == "none" or self.x.val_data is None:
            return
        tick = time.perf_counter()
        self.state.average = averaging.greedy_soup(
            self.x.model, self.run.checkpoints, self.state.snapshots, self.x.metric,
            lambda model: self.x.evaluate(model, self.x.val_data)[self.x.metric])
        self.state.eval_seconds += time.perf_counter() - tick

    # ------------------------------------------------------------------ one epoch
    def _train_epoch(self) -> None:
        s, cfg, model = self.state, self.cfg, self.x.model
        batches = epoch_batches(self.x.train_data.lengths, cfg.batch_size, self.x.seed, s.epoch,
                                cfg.group_by_length, self.x.sample_weights)
        self._unfreeze_for(s.epoch)
        train_mode(model)
        tick = time.perf_counter()
        for b in range(s.batch, len(batches)):
            if self.team is not None:
                self.team.seed_batch(self.x.seed, s.epoch, b)
            self._window.append(self.backward(batches[b]))
            s.samples += len(batches[b])
            s.batch = b + 1
            if s.batch % cfg.grad_accum and s.batch != len(batches):
                continue
            self.optimizer_step()
            s.train_seconds += time.perf_counter() - tick
            self._after_step(len(batches))
            self._check_time()
            self._agree()
            tick = time.perf_counter()
            if s.global_step >= self.total_steps or s.stopped_early:
                break
        if s.batch == len(batches):  # the epoch is complete
            s.epoch, s.batch = s.epoch + 1, 0
            if self.cfg.eval_every is None:
                self._validate()
                self._agree()
            self._checkpoint()
        if s.stop_reason == "time limit" and (not s.history or s.history[-1]["step"] != s.global_step):
            self._validate()  # the steps since the last validation are scored before stopping

    def _agree(self) -> None:
        """Workers: the leader's stop decision (its validation and clock decide) on every worker."""
        if self.team is None:
            return
        s = self.state
        code = self.team.from_leader(STOP_REASONS.index(s.stop_reason) if s.stopped_early else 0)
        s.stopped_early, s.stop_reason = code != 0, STOP_REASONS[code]

    def _check_time(self) -> None:
        """train.max_seconds: a budget on training + validation time; the best weights so far are kept."""
        s, limit = self.state, self.cfg.max_seconds
        if limit and self.leader and not s.stopped_early and s.train_seconds + s.eval_seconds >= limit:
            s.stopped_early, s.stop_reason = True, "time limit"
            log.info("time limit: stopping after %.0f s (train.max_seconds=%g)", s.train_seconds + s.eval_seconds, limit)

    def _unfreeze_for(self, epoch: int) -> None:
        """Gradual unfreezing: a pure function of the epoch, so a resumed run gets it right too."""
        names = {n for group in self.x.unfreeze[:epoch] for n in group}
        if names:
            for name, param in self.x.model.named_parameters():
                if name in names:
                    param.requires_grad_(True)

    def backward(self, rows) -> float:
        """One batch (these training rows) of the epoch: collate, forward, loss / grad_accum,
        backward (gradients accumulate). Returns the batch's unscaled loss; reading it syncs
        the device, as every step does."""
        if self.team is not None:
            return self._shard_backward(rows)
        batch = {k: v.to(self.x.device) for k, v in self.x.train_data.batch(rows).items()}
        with autocast(self.x.precision, self.x.device):
            loss = self.x.loss(self.x.model, batch) / self.cfg.grad_accum
        loss.backward()
        return loss.item() * self.cfg.grad_accum

    def _shard_backward(self, rows) -> float:
        """A worker's share of the batch, its mean loss weighted by its share of the rows: the
        gradients summed over the workers are the whole batch's. Returns the whole batch's loss."""
        rows, weight = shard(rows, self.team.rank, self.team.size)
        self.team.note_rows(len(rows) if weight else 0)
        batch = {k: v.to(self.x.device) for k, v in self.x.train_data.batch(rows).items()}
        with autocast(self.x.precision, self.x.device):
            loss = self.x.loss(self.x.model, batch) * (weight / self.cfg.grad_accum)
        loss.backward()
        return self.team.total(loss.detach().float()) * self.cfg.grad_accum

    def optimizer_step(self) -> None:
        """One optimizer update from the accumulated gradients (summed over the workers of a team
        first): clipping, AdamW, schedule, zero_grad."""
        if self.team is not None:
            self.team.sum_grads([p for p in self.x.model.parameters() if p.requires_grad])
        if self.cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.x.model.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.global_step += 1

    def _after_step(self, n_batches: int) -> None:
        s, cfg = self.state, self.cfg
        if self.leader:
            self._log_step(n_batches)
        else:  # a worker only trains: the leader logs, validates and checkpoints (it joins the hook)
            self._window.clear()
        epoch_done = s.batch == n_batches
        if cfg.eval_every and s.global_step % cfg.eval_every == 0:
            self._validate()
        elif s.global_step >= self.total_steps and (cfg.eval_every or not epoch_done):
            self._validate()  # the last step is always scored (a fractional last epoch, or off the eval_every grid)
        if s.global_step % cfg.checkpoint_every == 0 and not epoch_done:
            self._checkpoint()

    def _log_step(self, n_batches: int) -> None:
        s = self.state
        sps = s.samples / max(s.train_seconds, 1e-9)
        self.progress.update(s.global_step, self._window[-1], sps)
        if s.global_step % self.cfg.log_every == 0 or s.global_step == self.total_steps:
            self.run.log({"step": s.global_step, "epoch": self._epoch_float(n_batches), "split": "train",
                          "loss": sum(self._window) / len(self._window),
                          "lr": self.scheduler.get_last_lr()[0], "samples_per_second": sps})
            self._window.clear()

    def _epoch_float(self, n_batches: int) -> float:
        return round(self.state.epoch + self.state.batch / n_batches, 4)

    # ------------------------------------------------------------------ evaluation
    def _validate(self) -> None:
        s = self.state
        if self.x.val_data is None:
            return
        record = self._score() if self.leader else None
        if self.x.on_validate is not None and not s.stopped_early:
            if self.team is not None:  # every worker calls the hook with the leader's record: a hook
                record = self.team.share(record)  # may be a collective (Ray Train's report, a Tune trial)
            if self.x.on_validate(record) and self.leader:  # the leader's stop reaches the others (_agree)
                s.stopped_early, s.stop_reason = True, "pruned"
                log.info("stopped at step %d by the caller (pruned)", s.global_step)
                return
        if self.leader and self.cfg.patience and s.bad_evals >= self.cfg.patience and not s.stopped_early:
            s.stopped_early, s.stop_reason = True, "early stopping"
            log.info("early stopping: validation %s did not improve for %d evaluations", self.x.metric, s.bad_evals)

    def _score(self) -> dict:
        """The leader's validation: score, log, keep the best weights -> the validation record."""
        s, metric = self.state, self.x.metric
        tick = time.perf_counter()
        metrics = self.x.evaluate(self.x.model, self.x.val_data)
        record = {"step": s.global_step, "epoch": round(s.epoch + s.batch / self.batches_per_epoch, 4),
                  "validation": _brief(metrics)}
        if self.x.train_probe is not None:
            record["train"] = _brief(self.x.evaluate(self.x.model, self.x.train_probe))
        train_mode(self.x.model)
        s.eval_seconds += time.perf_counter() - tick
        s.history.append(record)
        brief, epoch = record["validation"], record["epoch"]
        self.run.log({"step": s.global_step, "epoch": epoch, "split": "validation", **brief})
        if "train" in record:  # "train" records are running training loss; this is eval mode
            self.run.log({"step": s.global_step, "epoch": epoch, "split": "train_eval", **record["train"]})
        self.progress.note(f"step {s.global_step}: validation " +
                           ", ".join(f"{k} {v:.4f}" for k, v in brief.items()))
        if better(metric, metrics[metric], s.best_value):
            s.best_value, s.best_step, s.best_epoch, s.bad_evals = metrics[metric], s.global_step, epoch, 0
            checkpoint.save_weights_atomic(self.x.model, self.run.best_weights)
        else:
            s.bad_evals += 1
        if self.cfg.average != "none":
            s.snapshots = averaging.keep_snapshot(self.x.model, self.run.checkpoints, s.snapshots, s.global_step,
                                                  metrics[metric], metric, self.cfg.average_top)
        return record

    def _checkpoint(self) -> None:
        if not self.leader:  # every worker holds the same weights and moments: the leader saves them
            return
        checkpoint.save(self.run.checkpoints, self.x.model, self.optimizer, self.scheduler, vars(self.state))
