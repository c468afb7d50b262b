"""The local backend: training runs as processes on this computer, one process group each.

How a run moves: :meth:`LocalRunner.submit` writes ``job.json`` (queued, not launched);
:func:`advance_queue` launches queued runs while there is room, oldest first; whoever polls (the
Train page's live fragment every few seconds, ``python -m core jobs list``, or a submit) advances
the queue, so nothing has to stay running in the background to start the next job. Room means: one
run per GPU (each run gets its own GPUs through ``CUDA_VISIBLE_DEVICES``), or on a computer without
a GPU one run at a time; a run submitted with ``exclusive=False`` starts at once beside the others.

A launched run is :mod:`core.job_process` (the watcher, leader of a new session and process group)
with the training command as its child. The pid is stored with its kernel start time, so a pid
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

from core.devices import local_devices
from core.runs import (
    EXIT_FILE,
    JOB_FILE,
    OUTPUT_LOG,
    STATUS_FILE,
    TERMINAL_STATES,
    finish,
    now_iso,
    read_json,
    run_dirs,
    tail,
    update_json,
)
from core.settings import PROJECT_ROOT

CANCEL_GRACE_S = 15.0  # after SIGTERM, the group gets this long to stop cleanly before SIGKILL
OOM_MESSAGE = ("ran out of memory: the system stopped the training (signal 9). "
               "Try a smaller batch size, or a computer with more memory")

_children: dict[int, subprocess.Popen] = {}  # watchers this process started, reaped when polled


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a process from /proc, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[19])


def start_ticks(pid: int) -> int | None:
    """The kernel start time of ``pid`` (identifies the process beyond its reusable pid)."""
    stat = _proc_stat(pid)
    return stat[1] if stat else None


def process_alive(pid: int | None, ticks: int | None = None) -> bool:
    """Whether ``pid`` runs and is still the process started at ``ticks`` (zombies count as gone)."""
    if not pid:
        return False
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)  # reaped: its exit status is in exit.json
        return False
    stat = _proc_stat(pid)
    if stat is None:
        if Path("/proc/self/stat").exists():
            return False
        try:  # no /proc (not Linux): the signal-0 probe is the best available check
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return stat[0] not in ("Z", "X") and (ticks is None or stat[1] == ticks)


def _signal_group(pgid: int | None, sig: int) -> None:
    if pgid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def _failure_message(run_dir: Path, exit_info: dict) -> str:
    """Plain words for how a training process that did not finish ended."""
    if not exit_info:
        return ("the training process stopped unexpectedly (the computer may have run out of memory "
                "or restarted); see the log")
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
        update_json(Path(run_dir) / JOB_FILE, backend=self.backend, argv=list(argv), cwd=str(PROJECT_ROOT),
                    created=now_iso(), launched=None, pid=None, exclusive=bool(exclusive),
                    gpus=max(1, int(gpus)), cancel_requested=False)
        advance_queue(Path(run_dir).parent)

    def refresh(self, run_dir: Path) -> None:
        """Bring status.json up to date: a process that died without finishing is marked failed."""
        run_dir = Path(run_dir)
        job, status = read_json(run_dir / JOB_FILE), read_json(run_dir / STATUS_FILE)
        alive = process_alive(job.get("pid"), job.get("start_ticks"))
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
        # Read again: the trainer may have written its last state between the two reads above.
        if read_json(run_dir / STATUS_FILE).get("state") not in TERMINAL_STATES:
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
        while wait_s and time.monotonic() < deadline and process_alive(job.get("pid"), job.get("start_ticks")):
            time.sleep(0.2)
        if wait_s and process_alive(job.get("pid"), job.get("start_ticks")):
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
        proc = subprocess.Popen([sys.executable, "-m", "core.job_process", str(run_dir)],
                                cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    _children[proc.pid] = proc
    # start_new_session makes the watcher the leader of its own group: pgid == pid.
    update_json(run_dir / JOB_FILE, launched=now_iso(), pid=proc.pid, pgid=proc.pid,
                start_ticks=start_ticks(proc.pid))


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
        active = {d: j for d, j in jobs.items() if j.get("launched")
                  and read_json(d / STATUS_FILE).get("state") not in TERMINAL_STATES
                  and process_alive(j.get("pid"), j.get("start_ticks"))}
        busy = {g for j in active.values() for g in j.get("gpu_ids") or []}
        waiting = sorted((d for d, j in jobs.items() if not j.get("launched") and not j.get("cancel_requested")
                          and read_json(d / STATUS_FILE).get("state") not in TERMINAL_STATES),
                         key=lambda d: jobs[d].get("created", ""))
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
