"""Device, threads and numeric precision, resolved once per run."""
from __future__ import annotations

import contextlib
import os
import platform
import sys

import torch

from ftkit.errors import ConfigError


def pick_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--set train.device=cuda: no CUDA device is visible to torch")
    return torch.device(choice)


def cpu_bf16_is_fast() -> bool:
    """bf16 matmuls beat fp32 only on CPUs with native bf16 instructions (AVX512-BF16, AMX).

    Plain AVX-512 is not enough: there oneDNN converts on the fly and bf16 autocast ran ~3x
    slower than fp32 for MiniLM-L6 on a 2-core Xeon (see bench/RESULTS.md).
    """
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()  # not Linux, or unreadable: assume no native bf16


PRECISION_ENV = "FTKIT_PRECISION"  # overrides `auto` (the suite runs once per precision with it)


def resolve_precision(choice: str, device: torch.device) -> str:
    """`train.precision`: fp32 / bf16 as given; `auto` is $FTKIT_PRECISION when set, else bf16
    where the hardware has native bf16 and fp32 elsewhere."""
    if choice == "auto":
        choice = forced_precision() or "auto"
    if choice != "auto":
        return choice
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_bf16_is_fast() else "fp32"


def forced_precision() -> str | None:
    value = os.environ.get(PRECISION_ENV, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in ("fp32", "bf16"):
        raise ConfigError(f"{PRECISION_ENV}={value}: choose auto, fp32 or bf16")
    return value


def autocast(precision: str, device: torch.device):
    """Mixed precision for the forward pass; weights and optimizer state stay fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def set_threads(threads: int | None) -> int:
    if threads is None:
        has_affinity = hasattr(os, "sched_getaffinity")
        threads = len(os.sched_getaffinity(0)) if has_affinity else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    return threads


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource
    # ru_maxrss is KiB on Linux: the process's peak resident memory, model and data included.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def release_freed_memory() -> None:
    """Hand freed heap memory back to the OS now (glibc malloc_trim). With keep_freed_memory's
    thresholds glibc never trims by itself; after a phase with far larger tensors than training
    uses (Whisper's encoder over 30 s windows) the kept pages would stay resident for the run."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name and platform.system() == "Linux":
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):
            pass


def keep_freed_memory() -> bool:
    """Stop glibc from returning large freed blocks to the OS after every step.

    glibc serves blocks above 32 MiB with fresh mmap pages, so a 47 MB embedding gradient
    page-faults in anew at every step (~20 ms, 8% of a MiniLM step on 2 cores). Raising the
    mmap and trim thresholds keeps those pages in the heap for reuse, as jemalloc/tcmalloc
    do for PyTorch CPU training. No-op off glibc.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


def _main(argv: list[str]) -> None:
    """`python -m ftkit.training.device [--other]`: what `auto` resolves to here (or the other one;
    `make test` runs the precision-sensitive tests again in it)."""
    here = resolve_precision("auto", pick_device("auto"))
    print({"fp32": "bf16", "bf16": "fp32"}[here] if "--other" in argv else here)


if __name__ == "__main__":
    _main(sys.argv[1:])
