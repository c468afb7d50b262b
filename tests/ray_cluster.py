"""A throw-away local Ray cluster for tests: ``ray start --head --block`` on 127.0.0.1, free ports.

Stopped by signalling the process group it was started in (and then any process it spawned that
left that group, such as Ray's worker processes), never with ``ray stop``, which would stop every
Ray cluster on the computer, including ones this test did not start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def local_ray_cluster(num_cpus: int = 1, start_timeout: float = 120.0) -> Iterator[str]:
    """Start a one-node Ray cluster; yields its dashboard address (``http://127.0.0.1:<port>``)."""
    ray_exe = Path(sys.executable).with_name("ray")
    if not ray_exe.is_file():
        ray_exe = Path(shutil.which("ray") or "ray")
    temp = Path(tempfile.mkdtemp(prefix="dfi-ray-"))  # short: Ray's socket paths must stay < 108 chars
    dashboard = free_port()
    ports = {
        "--port": free_port(),
        "--dashboard-port": dashboard,
        "--ray-client-server-port": free_port(),
        "--dashboard-agent-listen-port": free_port(),
        "--dashboard-agent-grpc-port": free_port(),
        "--metrics-export-port": free_port(),
        "--runtime-env-agent-port": free_port(),
    }
    cmd = [
        str(ray_exe),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1",
        f"--num-cpus={num_cpus}",
        "--num-gpus=0",
        "--include-dashboard=true",
        "--disable-usage-stats",
        "--object-store-memory=100000000",
        f"--temp-dir={temp}",
        *(f"{k}={v}" for k, v in ports.items()),
    ]
    # The job's `python` must be this interpreter (with the project's packages): put it first on PATH.
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    log = (temp / "ray-start.log").open("wb")
    proc = subprocess.Popen(
        cmd, cwd=temp, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    address = f"http://127.0.0.1:{dashboard}"
    spawned: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ray start exited: {(temp / 'ray-start.log').read_text()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{address}/api/version", timeout=2).ok:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray cluster did not start within {start_timeout:.0f} s")
            time.sleep(0.5)
        yield address
    finally:
        # Every process whose parent chain leads to the cluster, listed before the group is stopped
        # (stopping it would re-parent them to init and hide them).
        if proc.poll() is None:
            with contextlib.suppress(psutil.NoSuchProcess):
                spawned = psutil.Process(proc.pid).children(recursive=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for child in spawned:  # Ray's workers run in process groups of their own
            # psutil's kill() checks that the pid still names the same process (not a reused pid).
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                child.kill()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)
