"""The driver's side of `ftkit fit --workers N`: place the workers, start them, wait, report.

Ray Train (TorchTrainer) starts N worker processes joined in one torch process group and runs the
worker entry in each; FailureConfig restarts them all when one dies, and the restarted workers
resume from the run folder's last checkpoint (the launch id tells them this launch began the run).
What cannot be placed is refused before anything is written: on a local instance before Ray
starts, on a cluster (--address) as soon as its resources are known.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ftkit.config import DistributedConfig, FitConfig
from ftkit.errors import ConfigError, FtkitError

log = logging.getLogger(__name__)

LAUNCH_FILE = "launch.json"  # in RUN/checkpoints: the launch that began the run (resumable state)


@dataclass
class Job:
    """What every worker needs to run its part of one fit; pickled to the Ray workers."""

    cfg: FitConfig  # paths made absolute: a Ray worker runs in a folder of its own
    resume: bool  # the driver's verdict (RunDir.check): continue the run in cfg.out
    launch: str  # this launch's id: a worker Ray restarted finds it in the run folder and resumes
    quiet: bool = True
    command: tuple = ()
    score_test: bool = True
    save_model: bool = True
    record: Optional[dict] = None  # the config as given (relative paths kept), for config.yaml
    on_validate: Optional[Callable[[dict], bool]] = None  # Relay.worker: called on every worker


@dataclass
class Relay:
    """How a data-parallel run inside an outer loop's trial reports its validations (fit_run's
    `on_validate`): `worker` is called on every worker with the leader's validation record (it may
    be a collective, as Ray Train's report is; picklable: it travels to the workers), and
    `callbacks` are Ray Train callbacks of the driver's side that pass what the workers report on
    (Ray Tune's TuneReportCallback hands rank 0's reports to the trial)."""

    worker: Callable[[dict], bool]
    callbacks: tuple = ()


def wanted(cfg: FitConfig) -> bool:
    """The distributed path is taken only when asked: several workers, or a cluster address."""
    return cfg.distributed.workers > 1 or cfg.distributed.address is not None


def per_run(cfg: FitConfig, workers: Optional[int]) -> FitConfig:
    """--workers-per-trial N of an outer loop (tune, cv): distributed.workers of every run it makes
    (None: as configured)."""
    if workers is None:
        return cfg
    if workers < 1:
        raise ConfigError(f"--workers-per-trial {workers}: expected at least 1")
    return cfg.model_copy(update={"distributed": cfg.distributed.model_copy(update={"workers": workers})})


def backend(d: DistributedConfig) -> str:
    return "nccl" if d.gpus_per_worker > 0 else "gloo"


def check_local(cfg: FitConfig, flag: str = "--workers") -> None:
    """A local instance holds this machine only: refuse what it cannot place, before Ray starts.
    `flag`: the option that asked for the workers (an outer loop's --workers-per-trial)."""
    d = cfg.distributed
    if d.gpus_per_worker > 0 and cfg.train.device == "cpu":
        raise ConfigError(f"--gpus-per-worker {d.gpus_per_worker:g} with --set train.device=cpu: "
                          "choose one (GPU workers train on their GPU)")
    if d.address is not None:
        return
    cores = os.cpu_count() or 1
    if d.workers * d.cpus_per_worker > cores:
        raise ConfigError(f"{flag} {d.workers}: {d.workers} workers x {d.cpus_per_worker} CPU "
                          f"(--cpus-per-worker) do not fit this machine's {cores} cores; lower them, or run "
                          "on a cluster with --address")
    if d.gpus_per_worker > 0:
        _check_gpus(d, _local_gpus(), "this machine")


def _local_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _check_gpus(d: DistributedConfig, have: float, where: str) -> None:
    need = d.workers * d.gpus_per_worker
    if need > have:
        what = "no GPU" if not have else f"{have:g} GPU(s)"
        raise ConfigError(f"--gpus-per-worker {d.gpus_per_worker:g}: {d.workers} workers need {need:g} GPU(s) "
                          f"and {where} has {what}; use --gpus-per-worker 0 (CPU workers)")


def check_cluster(d: DistributedConfig, resources: dict) -> None:
    """--address: the cluster's own totals decide (Ray would otherwise wait for them forever)."""
    cpus = resources.get("CPU", 0)
    if d.workers * d.cpus_per_worker > cpus:
        raise ConfigError(f"--workers {d.workers}: {d.workers} workers x {d.cpus_per_worker} CPU "
                          f"(--cpus-per-worker) do not fit the cluster at --address {d.address} "
                          f"({cpus:g} CPUs in all)")
    if d.gpus_per_worker > 0:
        _check_gpus(d, resources.get("GPU", 0), f"the cluster at --address {d.address}")


@contextlib.contextmanager
def cluster(cfg: FitConfig, quiet: bool):
    """Ray for the workers: the cluster at --address, or a local instance started here (bounded to
    the cores the workers asked for, no dashboard, a temporary folder) and stopped afterwards."""
    import ray

    d = cfg.distributed
    check_local(cfg)
    own = not ray.is_initialized()
    scratch = tempfile.mkdtemp(prefix="ftkit-ray-") if own and d.address is None else None
    if own:
        started = time.monotonic()
        if d.address is not None:
            check_reachable(d.address)
        try:
            ray.init(address=d.address, num_cpus=None if d.address else d.workers * d.cpus_per_worker,
                     num_gpus=None if d.address else (_local_gpus() if d.gpus_per_worker else 0),
                     include_dashboard=False, log_to_driver=not quiet, logging_level=logging.WARNING,
                     **({"_temp_dir": scratch} if scratch else {}))
        except Exception as err:  # noqa: BLE001  (Ray raises ConnectionError, AuthenticationError, RayError...)
            if d.address is None:
                raise
            raise join_failure(d.address, err) from None
        log.info("ray: %s in %.1fs", d.address or "local instance started", time.monotonic() - started)
    try:
        if d.address is not None:
            check_cluster(d, ray.cluster_resources())
        yield
    finally:
        if own:
            ray.shutdown()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def check_reachable(address: str, seconds: float = 5.0) -> None:
    """--address host:port (or ray://host:port): refuse at once when nothing listens there; Ray's own
    connect retries for minutes. "auto" (the cluster this machine belongs to) is left to Ray."""
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except OSError as err:
        raise ConfigError(f"--address {address}: no Ray cluster answers there ({err.strerror or err}); start "
                          "one with `ray start --head`, or leave --address out to run on this machine") from None


def join_failure(address: str, err: Exception) -> ConfigError:
    """--address: why this process could not join the cluster, in one line. Heads made by `ray start
    --head` (Ray 2.5x+) require a token by default; Ray reports a client without it only as a failed
    connection, so the hint is always given."""
    lines = str(err).strip().splitlines()
    why = (lines[0] if lines else type(err).__name__)[:240]
    return ConfigError(f"--address {address}: cannot join the Ray cluster there: {why}; if the cluster uses "
                       "token authentication (`ray start`'s default), set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN "
                       "(or RAY_AUTH_TOKEN_PATH) to the head's token (`ray get-auth-token` on the head)")


def launch(job: Job, entry: Callable, storage: Optional[Path] = None, callbacks: tuple = ()) -> None:
    """Run `entry(job, team)` in each of the N workers and wait; a worker's ftkit error is raised
    here as itself (one line, exit 2), any other failure as the first worker's error. `callbacks`:
    Ray Train callbacks (a Relay's)."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    d = job.cfg.distributed
    per_worker = {"CPU": d.cpus_per_worker, **({"GPU": d.gpus_per_worker} if d.gpus_per_worker else {})}
    keep = storage is not None
    storage = storage or Path(tempfile.mkdtemp(prefix="ftkit-train-"))
    trainer = TorchTrainer(
        _worker_main, train_loop_config={"job": job, "entry": entry},
        torch_config=TorchConfig(backend=backend(d)),
        scaling_config=ScalingConfig(num_workers=d.workers, use_gpu=d.gpus_per_worker > 0,
                                     resources_per_worker=per_worker),
        run_config=RunConfig(name=f"fit-{job.launch}", storage_path=str(storage),
                             failure_config=FailureConfig(max_failures=d.max_failures),
                             callbacks=list(callbacks)))
    try:
        trainer.fit()
    except Exception as err:  # noqa: BLE001  (Ray's TrainingFailedError wraps the workers' errors)
        raise _unwrap(err) from None
    finally:
        if not keep:
            shutil.rmtree(storage, ignore_errors=True)


def summary(d: DistributedConfig, team, per_worker: list[dict]) -> dict:
    """summary.json's `distributed`: how the run was spread, and what each worker trained per second."""
    return {"workers": team.size, "backend": team.backend, "address": d.address or "local",
            "cpus_per_worker": d.cpus_per_worker, "gpus_per_worker": d.gpus_per_worker, "per_worker": per_worker}


def _unwrap(err: Exception) -> Exception:
    failures = getattr(err, "worker_failures", None) or {}
    for rank in sorted(failures):
        if isinstance(failures[rank], FtkitError):
            return failures[rank]
    if failures:
        rank = min(failures)
        return RuntimeError(f"--workers: worker {rank} failed: {type(failures[rank]).__name__}: {failures[rank]}")
    return err


def _worker_main(config: dict) -> None:
    """Inside each Ray Train worker: this worker's team, then the fit flow's worker entry."""
    from ftkit.distributed.team import current_team

    job: Job = config["job"]
    team = current_team()
    if job.cfg.train.threads is None:  # the cores Ray reserved for this worker, not every core
        job = _with_threads(job, job.cfg.distributed.cpus_per_worker)
    config["entry"](job, team)


def _with_threads(job: Job, threads: int) -> Job:
    from dataclasses import replace

    train = job.cfg.train.model_copy(update={"threads": threads})
    return replace(job, cfg=job.cfg.model_copy(update={"train": train}))


def absolute(cfg: FitConfig) -> FitConfig:
    """Ray runs each worker in its own working folder: the run folder, data and model paths become
    absolute (a relative --out, --train or model folder would point elsewhere there)."""
    tree = cfg.model_dump(mode="json")
    tree["out"] = str(Path(tree["out"]).resolve())
    for key in ("train", "validation", "test"):
        if tree["data"][key] and Path(tree["data"][key]).exists():
            tree["data"][key] = str(Path(tree["data"][key]).resolve())
    ref = tree["retention"]["reference_data"]
    if ref and Path(ref).exists():
        tree["retention"]["reference_data"] = str(Path(ref).resolve())
    if Path(tree["model"]["name"]).expanduser().is_dir():
        tree["model"]["name"] = str(Path(tree["model"]["name"]).expanduser().resolve())
    return type(cfg).model_validate(tree)
