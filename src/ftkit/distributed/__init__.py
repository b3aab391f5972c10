"""`ftkit fit --workers N`: data-parallel training on Ray Train, through the one loop.

launch.py is the driver's side (placement checks, the Ray instance, TorchTrainer with its
FailureConfig); team.py is a worker's side (training.loop.Team over torch.distributed). The
fit flow itself (runs/fit.py: prepare -> loop -> final evaluation -> save) runs unchanged in every
worker; this package knows nothing of it but the entry it is handed, so it sits below runs.fit.
Ray and torch.distributed are imported inside functions: `ftkit --help` never loads them.
"""
from ftkit.distributed.launch import Job, Relay, absolute, check_local, cluster, launch, per_run, summary, wanted

__all__ = ["Job", "Relay", "absolute", "check_local", "cluster", "launch", "per_run", "summary", "wanted"]
