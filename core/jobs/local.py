"""The local backend: training runs as processes on this computer, one process group each.

How a run moves: :meth:`LocalRunner.submit` writes ``job.json`` (queued, not launched);
:func:`advance_queue` launches queued runs while there is room, oldest first; whoever polls (the
Train page's live fragment every few seconds, ``python -m core jobs list``, or a submit) advances
the queue, so nothing has to stay running in the background to start the next job. Room means: one
run per GPU (each run gets its own GPUs through ``CUDA_VISIBLE_DEVICES``), or on a computer without
a GPU one run at a time; a run submitted with ``exclusive=False`` starts at once beside the others.

A launched run is :mod:`core.jobs.child` (the watcher, leader of a new session and process group)
with the training command as its child. The pid is stored with its creation time (psutil), so a pid
reused by another program after a reboot is never mistaken for the run. State is always read back
from the run folder, so a page reload or a server restart loses nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from core.files import now_iso, read_json, update_json
from core.jobs.devices import local_devices
from core.settings import PROJECT_ROOT
from core.training.run_folder import (
    EXIT_FILE,
    JOB_FILE,
    OUTPUT_LOG,
    STATUS_FILE,
    TERMINAL_STATES,
    finish,
    run_dirs,
    tail,
)

CANCEL_GRACE_S = 15.0  # after SIGTERM, the group gets this long to stop cleanly before SIGKILL
OOM_MESSAGE = (
    "ran out of memory: the system stopped the training (signal 9). "
    "Try a smaller batch size, or a computer with more memory"
)

# psutil's create_time is wall-clock time (boot time + ticks since boot), so it moves when the
# system clock is stepped (NTP right after boot); a reused pid belongs to a process created after
# the run's own had ended, so a few seconds of slack cannot mistake one for the other in practice.
START_TIME_TOLERANCE_S = 5.0

_children: dict[int, subprocess.Popen] = {}  # watchers this process started, reaped when polled


def process_start_time(pid: int) -> float | None:
    """When ``pid`` was created (psutil's ``create_time``, seconds since the epoch); None if gone.

    Stored beside the pid, it identifies the process beyond its reusable pid.
    """
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:  # NoSuchProcess (ZombieProcess included) or AccessDenied
        return None


def recorded_start_time(record: dict) -> float | None:
    """The process start time a ``job.json`` or ``extract.json`` holds (None when it holds none).

    Folders written before psutil was used hold ``start_ticks`` (clock ticks after boot, from
    /proc) instead of ``create_time``; psutil computes ``create_time`` from the same ticks and the
    same boot time, so converting them keeps those runs recognisable.
    """
    created = record.get("create_time")
    if isinstance(created, (int, float)):
        return float(created)
    ticks = record.get("start_ticks")
    if isinstance(ticks, int) and not isinstance(ticks, bool):
        return psutil.boot_time() + ticks / os.sysconf("SC_CLK_TCK")
    return None


def process_alive(pid: int | None, created: float | None = None) -> bool:
    """Whether ``pid`` runs and is still the process created at ``created`` (zombies count as gone).

    Args:
        pid: the process id (None or 0: no process).
        created: its :func:`process_start_time`; None accepts any process with this pid.
    """
    if not pid:
        return False
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)  # reaped: its exit status is in exit.json
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return False
        return created is None or abs(proc.create_time() - created) <= START_TIME_TOLERANCE_S
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists but belongs to someone else: the best available answer


def recorded_process_alive(record: dict) -> bool:
    """Whether the process a ``job.json`` or ``extract.json`` names (``pid`` and its start time)
    is still running."""
    return process_alive(record.get("pid"), recorded_start_time(record))


def _signal_group(pgid: int | None, sig: int) -> None:
    if pgid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def _failure_message(run_dir: Path, exit_info: dict) -> str:
    """Plain words for how a training process that did not finish ended."""
    if not exit_info:
        return (
            "the training process stopped unexpectedly (the computer may have run out of memory "
            "or restarted); see the log"
        )
    code = exit_info.get("returncode")
    if exit_info.get("error"):
        return str(exit_info["error"])
    if code == -signal.SIGKILL:
        return OOM_MESSAGE
    if isinstance(code, int) and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        return f"the training process was stopped by signal {name}"
    errors = [line for line in tail(run_dir / OUTPUT_LOG, 200) if line.startswith("error:")]
    if errors:
        return errors[-1].removeprefix("error:").strip()
    if code == 0:
        return "the training process ended without finishing; see the log"
    return f"the training process ended with an error (exit status {code}); see the log"


class LocalRunner:
    """Runs training as local processes; see the module docstring for the queue rules."""

    backend = "local"

    def submit(self, run_dir: Path, argv: list[str], exclusive: bool = True, gpus: int = 1) -> None:
        """Queue the run (its job.json is written here) and start it if there is room.

        Args:
            run_dir: the run folder (spec.json already written).
            argv: the command, an argument list (never a shell string).
            exclusive: wait for a free slot (GPU, or the CPU); False starts it at once.
            gpus: GPUs the run needs when the computer has GPUs.
        """
        update_json(
            Path(run_dir) / JOB_FILE,
            backend=self.backend,
            argv=list(argv),
            cwd=str(PROJECT_ROOT),
            created=now_iso(),
            launched=None,
            pid=None,
            exclusive=bool(exclusive),
            gpus=max(1, int(gpus)),
            cancel_requested=False,
        )
        advance_queue(Path(run_dir).parent)

    def refresh(self, run_dir: Path) -> None:
        """Bring status.json up to date: a process that died without finishing is marked failed."""
        run_dir = Path(run_dir)
        job, status = read_json(run_dir / JOB_FILE), read_json(run_dir / STATUS_FILE)
        alive = recorded_process_alive(job)
        if status.get("state") in TERMINAL_STATES:
            if not alive:
                self._close(run_dir, job)
            return
        if not job.get("launched"):
            return  # still waiting in the queue
        if alive:
            sent = job.get("cancel_sent_at")
            if sent and time.time() - sent > CANCEL_GRACE_S:
                _signal_group(job.get("pgid"), signal.SIGKILL)  # it did not stop cleanly in time
            return
        # finish() leaves an end the trainer wrote after the reads above (it checks under the lock).
        if job.get("cancel_requested"):
            finish(run_dir, "cancelled", "cancelled on request")
        else:
            finish(run_dir, "failed", _failure_message(run_dir, read_json(run_dir / EXIT_FILE)))
        self._close(run_dir, job)

    def cancel(self, run_dir: Path, wait_s: float = 0.0) -> None:
        """Stop the run: a queued one never starts; a running one gets SIGTERM, then SIGKILL.

        Args:
            wait_s: wait up to this long for the process group to end (SIGKILL when it has not);
                0 returns at once and a later :meth:`refresh` sends SIGKILL after the grace time.
        """
        run_dir = Path(run_dir)
        with queue_lock(run_dir.parent):  # so the queue cannot launch it while it is cancelled
            job = update_json(run_dir / JOB_FILE, cancel_requested=True)
            if not job.get("launched"):
                finish(run_dir, "cancelled", "cancelled before it started")
                return
        (run_dir / "cancel").touch()  # the trainer also checks this file after every batch
        update_json(run_dir / JOB_FILE, cancel_sent_at=time.time())
        _signal_group(job.get("pgid"), signal.SIGTERM)
        deadline = time.monotonic() + wait_s
        while wait_s and time.monotonic() < deadline and recorded_process_alive(job):
            time.sleep(0.2)
        if wait_s and recorded_process_alive(job):
            _signal_group(job.get("pgid"), signal.SIGKILL)
        self.refresh(run_dir)

    @staticmethod
    def _close(run_dir: Path, job: dict) -> None:
        """Once its watcher has ended, a finished run leaves no process of its group behind (e.g. a
        helper of a crashed run); done once, right when the end is seen, so the group id is fresh."""
        if job.get("closed") or not job.get("launched"):
            return
        _signal_group(job.get("pgid"), signal.SIGKILL)
        update_json(Path(run_dir) / JOB_FILE, closed=True)


def launch(run_dir: Path, gpu_ids: list[int] | None) -> None:
    """Start the watcher (and through it the training command) in a new process group."""
    run_dir = Path(run_dir)
    env = {"CUDA_VISIBLE_DEVICES": ",".join(map(str, gpu_ids))} if gpu_ids else {}
    update_json(run_dir / JOB_FILE, env=env, gpu_ids=gpu_ids or [])
    with (run_dir / OUTPUT_LOG).open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.jobs.child", str(run_dir)],
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    # start_new_session makes the watcher the leader of its own group: pgid == pid.
    update_json(
        run_dir / JOB_FILE, launched=now_iso(), pid=proc.pid, pgid=proc.pid, create_time=process_start_time(proc.pid)
    )


@contextlib.contextmanager
def queue_lock(runs_root: Path):
    """One queue advance at a time across every session and process (an flock on the runs root)."""
    runs_root.mkdir(parents=True, exist_ok=True)
    with (runs_root / ".queue.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def advance_queue(runs_root: Path, gpu_count: int | None = None) -> list[Path]:
    """Launch queued local runs while there is room; returns the run folders launched.

    Args:
        runs_root: the folder holding the run folders.
        gpu_count: GPUs of this computer (default: as nvidia-smi reports).
    """
    runs_root = Path(runs_root)
    n_gpus = len(local_devices().gpus) if gpu_count is None else gpu_count
    started = []
    with queue_lock(runs_root):
        jobs = {d: read_json(d / JOB_FILE) for d in run_dirs(runs_root)}
        jobs = {d: j for d, j in jobs.items() if j.get("backend") == "local"}
        active = {
            d: j
            for d, j in jobs.items()
            if j.get("launched")
            and read_json(d / STATUS_FILE).get("state") not in TERMINAL_STATES
            and recorded_process_alive(j)
        }
        busy = {g for j in active.values() for g in j.get("gpu_ids") or []}
        waiting = sorted(
            (
                d
                for d, j in jobs.items()
                if not j.get("launched")
                and not j.get("cancel_requested")
                and read_json(d / STATUS_FILE).get("state") not in TERMINAL_STATES
            ),
            key=lambda d: jobs[d].get("created", ""),
        )
        for run_dir in waiting:
            job = jobs[run_dir]
            free = [g for g in range(n_gpus) if g not in busy]
            if n_gpus:
                want = min(job.get("gpus", 1), n_gpus)
                if len(free) < want and job.get("exclusive", True):
                    continue
                gpu_ids = free[:want] if len(free) >= want else None  # not exclusive: share the GPUs
            else:
                if job.get("exclusive", True) and active:
                    continue
                gpu_ids = None
            launch(run_dir, gpu_ids)
            busy |= set(gpu_ids or [])
            active[run_dir] = read_json(run_dir / JOB_FILE)
            started.append(run_dir)
    return started
