"""A worker's side of a data-parallel run: training.loop.Team over torch.distributed.

Ray Train has already joined the workers into one process group (gloo on CPU, NCCL on GPU) when
a worker starts; this class is the few collectives the one loop needs. Gradients are summed with
plain all-reduces at each optimizer step rather than through a DistributedDataParallel wrapper,
because the loop, the strategies and the checkpoints all address the model itself (its parameter
names, its attributes) and gradual unfreezing changes which parameters train mid-run, which a
DDP wrapper fixes when it is built. Summing at the step (not per batch) is DDP's `no_sync` over
gradient accumulation: one reduction per update.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

BUCKET = 1 << 24  # elements per all-reduce (64 MB of fp32): few calls, bounded extra memory
KILL_ENV = "FTKIT_KILL_WORKER"  # tests only: "RANK:STEP:MARKER", see TorchTeam._maybe_die


@dataclass
class TorchTeam:
    """This worker in the process group Ray Train set up; implements training.loop.Team."""

    rank: int
    size: int
    device: torch.device
    backend: str
    rows: int = 0  # training rows this worker trained on (its throughput)
    steps: int = 0  # optimizer steps this process took (the kill hook counts them)
    first: Optional[float] = None  # when this worker's first batch began
    last: Optional[float] = None  # when its last gradient sum ended
    kill: Optional[str] = field(default_factory=lambda: os.environ.get(KILL_ENV))

    def sum_grads(self, params: list[torch.Tensor]) -> None:
        import torch.distributed as dist

        has = torch.tensor([float(p.grad is not None) for p in params], device=self.device)
        dist.all_reduce(has)  # a parameter with a gradient on any worker is summed on all of them
        live = [p for p, n in zip(params, has.tolist()) if n]
        for p in live:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        for bucket in _buckets(live):
            grads = [p.grad for p in bucket]
            flat = torch._utils._flatten_dense_tensors(grads)
            dist.all_reduce(flat)
            for grad, summed in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
                grad.copy_(summed)
        self.steps += 1
        self.last = time.perf_counter()
        self._maybe_die()

    def total(self, value: torch.Tensor) -> float:
        import torch.distributed as dist

        value = value.detach().clone().reshape(1).to(self.device)
        dist.all_reduce(value)
        return float(value.item())

    def from_leader(self, code: int) -> int:
        import torch.distributed as dist

        value = torch.tensor([code], dtype=torch.int64, device=self.device)
        dist.broadcast(value, 0)
        return int(value.item())

    def share(self, value):
        """The leader's `value` on every worker (a validation record: a few numbers)."""
        import torch.distributed as dist

        box = [value if self.rank == 0 else None]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def seed_batch(self, seed: int, epoch: int, batch: int) -> None:
        """A pure function of (seed, epoch, batch, rank): each worker draws its own dropout masks,
        and a resumed worker draws the same ones again, with no per-worker generator state to save."""
        value = int(np.random.SeedSequence([seed, epoch, batch, self.rank]).generate_state(1)[0])
        torch.manual_seed(value)
        np.random.seed(value)
        if self.first is None:
            self.first = time.perf_counter()

    def note_rows(self, rows: int) -> None:
        self.rows += rows

    def gather(self, value) -> list:
        """Every worker's `value`, in rank order, on every worker."""
        import torch.distributed as dist

        out: list = [None] * self.size
        dist.all_gather_object(out, value)
        return out

    def throughput(self) -> dict:
        seconds = (self.last - self.first) if self.first is not None and self.last is not None else 0.0
        return {"rank": self.rank, "samples": self.rows, "seconds": round(seconds, 3),
                "samples_per_second": round(self.rows / max(seconds, 1e-9), 2)}

    def _maybe_die(self) -> None:
        """Kill tests: FTKIT_KILL_WORKER=RANK:STEP:MARKER makes worker RANK SIGKILL itself after its
        STEP-th optimizer step, once (MARKER is created first, so the restarted worker lives)."""
        if not self.kill:
            return
        rank, step, marker = self.kill.split(":", 2)
        if int(rank) == self.rank and self.steps == int(step) and not Path(marker).exists():
            Path(marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)


def _buckets(params: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Parameters grouped by dtype and device, at most BUCKET elements a group (one flat tensor each)."""
    groups: dict = {}
    for p in params:
        groups.setdefault((p.grad.dtype, p.grad.device), []).append(p)
    out = []
    for members in groups.values():
        bucket, size = [], 0
        for p in members:
            if bucket and size + p.numel() > BUCKET:
                out.append(bucket)
                bucket, size = [], 0
            bucket.append(p)
            size += p.numel()
        out.append(bucket)
    return out


def current_team() -> TorchTeam:
    """This Ray Train worker's team (called inside the worker, after Ray set up the process group)."""
    import ray.train
    import ray.train.torch
    import torch.distributed as dist

    ctx = ray.train.get_context()
    device = torch.device("cpu")
    if dist.get_backend() == "nccl":  # the GPU Ray gave this worker: the loop's device and NCCL's
        device = ray.train.torch.get_device()
        torch.cuda.set_device(device)
    return TorchTeam(ctx.get_world_rank(), ctx.get_world_size(), device, str(dist.get_backend()))
