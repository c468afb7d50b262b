"""Scans started from the Scan page: ``python -m core scan`` as a background process, one folder each.

The page must stay responsive and a scan must outlive a closed browser tab, so the page does not
scan in its own script run: it starts the command line in a new session (process group) with its
RESULTS under ``<cache>/scans/<id>/``, and every rerun reads progress back from that folder
(core.scan.results). The process is recorded with its creation time (``launch.json``), so a pid
reused after a restart is never mistaken for the scan; Stop sends it SIGTERM, which the command
turns into the engine's stop (what is done is kept). A scan on the Ray cluster is the same process
following its job, and stopping it stops the job.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from core.files import now_iso, read_json, write_json_atomic
from core.jobs.local import process_alive, process_start_time
from core.scan.results import ResultsFolder
from core.settings import PROJECT_ROOT, Settings

LAUNCH_FILE = "launch.json"
LOG_FILE = "scan.log"
_children: dict[int, subprocess.Popen] = {}  # processes this server started, reaped when polled


def scans_root(settings: Settings) -> Path:
    """Where the page's scans keep their RESULTS (beside the runs root: a cluster reaches both)."""
    return settings.cache_dir / "scans"


def list_scans(settings: Settings) -> list[Path]:
    """The page's scan folders, newest first."""
    root = scans_root(settings)
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if (p / LAUNCH_FILE).is_file()), key=lambda p: p.name, reverse=True)


def start(src: Path, model_ids: Sequence[str], frames: int, settings: Settings, ray_address: str | None = None) -> Path:
    """Start ``python -m core scan SRC`` in the background; returns its RESULTS folder."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = scans_root(settings) / f"{stamp}-{uuid.uuid4().hex[:6]}"
    out.mkdir(parents=True)
    argv = [sys.executable, "-m", "core", "scan", str(src), "--out", str(out), "--models", ",".join(model_ids)]
    argv += ["--frames", str(int(frames)), "--no-progress"] + (["--ray", ray_address] if ray_address else [])
    with open(out / LOG_FILE, "ab") as log:
        proc = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    _children[proc.pid] = proc
    write_json_atomic(
        out / LAUNCH_FILE,
        {
            "src": str(src),
            "model_ids": list(model_ids),
            "frames": int(frames),
            "ray_address": ray_address,
            "argv": argv,
            "pid": proc.pid,
            "create_time": process_start_time(proc.pid),
            "started": now_iso(),
        },
    )
    return out


def launch_info(out: Path) -> dict:
    """launch.json of a page scan ({} when missing)."""
    return read_json(Path(out) / LAUNCH_FILE)


def alive(out: Path) -> bool:
    """True while the scan's process is still running."""
    info = launch_info(out)
    proc = _children.get(info.get("pid"))
    if proc is not None and proc.poll() is not None:  # ended: reap it so it is not a zombie
        _children.pop(proc.pid, None)
        return False
    return process_alive(info.get("pid"), info.get("create_time"))


def stop(out: Path) -> bool:
    """Ask the scan to stop (SIGTERM to its process group); False when it was not running."""
    info = launch_info(out)
    if not alive(out):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(int(info["pid"]), signal.SIGTERM)
    return True


def status(out: Path) -> dict:
    """Where a page scan stands: its scan.json state, whether it runs, and the error that ended it.

    ``phase`` is "starting" (the process runs, the scan has not written its state yet), "running",
    "finished", "stopped" or "failed" (the process ended without finishing: its last ``error:``
    line, or the last line of its log, says why).
    """
    folder = ResultsFolder(out)
    state, running = folder.state(), alive(out)
    phase = state.get("status") or ("starting" if running else "failed")
    error = state.get("error")
    if not running and phase in ("running", "starting"):
        phase = "failed"  # killed (out of memory, the server's computer restarted) mid-scan
    if phase == "failed" and not error:
        error = _last_error(Path(out) / LOG_FILE) or "the scan process ended without saying why"
    return {"phase": phase, "running": running, "state": state, "error": error}


def _last_error(log: Path) -> str | None:
    try:
        lines = [
            line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()
        ]
    except OSError:
        return None
    errors = [line for line in lines if line.startswith("error:")]
    return (errors[-1][len("error:") :].strip() if errors else None) or (lines[-1] if lines else None)
