"""What a training runtime has to offer: GPUs (with their memory), CPUs, memory.

Shown on the Train page before launch. Locally, ``nvidia-smi`` answers in a few milliseconds
without loading TensorFlow (which would take seconds and hold GPU memory in the web server); a
machine without it has no usable NVIDIA GPU for TensorFlow either. On a Ray cluster, the state
API lists every node's resources; Ray does not report GPU memory, so when the cluster has GPUs a
tiny probe job runs ``nvidia-smi`` there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field

NVIDIA_SMI_QUERY = ["--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"]
PROBE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Gpu:
    """One GPU: its index on its node, model name and total memory (MiB; None when unknown)."""

    index: int
    name: str
    memory_mb: int | None
    node: str = "this computer"


@dataclass(frozen=True)
class Devices:
    """The hardware of one runtime, in plain values for the page."""

    where: str
    cpus: float | None
    memory_gb: float | None
    gpus: tuple[Gpu, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        """One plain line, e.g. "2 GPUs (NVIDIA H200, 140 GB each), 16 CPUs, 128 GB memory"."""
        parts = []
        if self.gpus:
            names = sorted({g.name for g in self.gpus})
            memory = {g.memory_mb for g in self.gpus}
            each = f", {next(iter(memory)) / 1024:.0f} GB each" if len(memory) == 1 and None not in memory else ""
            parts.append(f"{len(self.gpus)} GPU{'s' if len(self.gpus) > 1 else ''} ({', '.join(names)}{each})")
        else:
            parts.append("no GPU (training runs on the CPU, which is much slower)")
        if self.cpus:
            parts.append(f"{self.cpus:g} CPUs")
        if self.memory_gb:
            parts.append(f"{self.memory_gb:.0f} GB memory")
        return ", ".join(parts)


def parse_nvidia_smi(text: str, node: str = "this computer") -> tuple[Gpu, ...]:
    """GPUs from ``nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits``."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        memory = int(float(parts[2])) if parts[2].replace(".", "", 1).isdigit() else None
        gpus.append(Gpu(int(parts[0]), parts[1], memory, node))
    return tuple(gpus)


_local_cache: tuple[float, Devices] | None = None


def local_devices(max_age_s: float = 60.0) -> Devices:
    """This computer's GPUs (by nvidia-smi), CPUs and memory; cached for ``max_age_s`` seconds."""
    global _local_cache
    if _local_cache is not None and time.monotonic() - _local_cache[0] < max_age_s:
        return _local_cache[1]
    gpus: tuple[Gpu, ...] = ()
    notes = []
    exe = shutil.which("nvidia-smi")
    if exe:
        try:
            done = subprocess.run([exe, *NVIDIA_SMI_QUERY], capture_output=True, text=True, timeout=10)
            gpus = parse_nvidia_smi(done.stdout) if done.returncode == 0 else ()
            if done.returncode != 0:
                notes.append("nvidia-smi is installed but could not list the GPUs")
        except (OSError, subprocess.TimeoutExpired):
            notes.append("nvidia-smi did not answer")
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        memory_gb = None
    devices = Devices("this computer", float(len(os.sched_getaffinity(0))), memory_gb, gpus, tuple(notes))
    _local_cache = (time.monotonic(), devices)
    return devices
