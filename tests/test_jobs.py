"""The local runner (core.jobs.local): states read back from run folders, crash, out of memory,
cancel, the queue, and recovery after a restart. A tiny fake "trainer" script stands in for
``python -m core train``: it writes status.json the way the trainer does and then behaves as
each test needs (finish, crash, get SIGKILLed, wait to be cancelled, ignore SIGTERM)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from core.files import read_json
from core.jobs import local as jobs_local
from core.jobs.devices import Devices, Gpu
from core.jobs.local import (
    LocalRunner,
    advance_queue,
    process_alive,
    process_start_time,
    recorded_process_alive,
)
from core.training.run_folder import new_run_dir, read_run

FAKE_TRAINER = r"""
import json, os, signal, subprocess, sys, time
from pathlib import Path
run, mode = Path(sys.argv[1]), sys.argv[2]
def status(**kw):
    path = run / "status.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(kw, updated="2030-01-01T00:00:00+00:00")
    tmp = run / ".status.tmp"; tmp.write_text(json.dumps(data)); tmp.replace(path)
status(state="running", epoch=1, epochs=2, started="2030-01-01T00:00:00+00:00")
print("fake trainer started", flush=True)
if mode == "succeed":
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"epoch": 1, "loss": 0.5, "val_auc": 0.75}) + "\n")
    status(state="succeeded", epoch=2)
elif mode == "crash":
    print("Traceback (most recent call last):\nValueError: boom", flush=True)
    print("error: internal error: ValueError: boom", file=sys.stderr, flush=True)
    sys.exit(1)
elif mode == "oom":
    os.kill(os.getpid(), signal.SIGKILL)
elif mode in ("wait", "stubborn"):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    (run / ".grandchild.tmp").write_text(str(child.pid))
    (run / ".grandchild.tmp").replace(run / "grandchild.pid")  # whole, never half-written
    if mode == "wait":
        def stop(*_):
            status(state="cancelled", message="cancelled on request")
            child.terminate(); sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
    else:
        signal.signal(signal.SIGTERM, lambda *_: None)
    while not (run / "release").exists():
        time.sleep(0.05)
    status(state="succeeded")
"""


@pytest.fixture
def runs_root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(jobs_local, "local_devices", lambda: Devices("test", 2.0, 8.0))  # a CPU-only computer
    yield tmp_path / "runs"
    # Even when a test fails half-way, no fake trainer of it is left running.
    for job in (tmp_path / "runs").glob("*/job.json"):
        pgid = json.loads(job.read_text()).get("pgid")
        if pgid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)


def submit(runs_root: Path, mode: str, exclusive: bool = True) -> Path:
    script = runs_root.parent / "fake_trainer.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(FAKE_TRAINER)
    run_dir = new_run_dir(runs_root, "meso4", mode)
    (run_dir / "spec.json").write_text(json.dumps({"arch": "meso4", "tag": mode, "data": "d", "epochs": 2}))
    (run_dir / "status.json").write_text(json.dumps({"state": "queued"}))
    LocalRunner().submit(run_dir, [sys.executable, str(script), str(run_dir), mode], exclusive=exclusive)
    return run_dir


def wait_for(run_dir: Path, states: tuple[str, ...], timeout: float = 30.0) -> str:
    """Refresh until the run reaches one of ``states``; returns the state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        LocalRunner().refresh(run_dir)
        state = read_run(run_dir).state
        if state in states:
            return state
        time.sleep(0.1)
    raise AssertionError(f"{run_dir.name} stayed {read_run(run_dir).state}, not {states}")


def wait_running(run_dir: Path) -> None:
    deadline = time.monotonic() + 30
    while (
        read_json(run_dir / "status.json").get("state") != "running"
        or ("wait" in run_dir.name or "stubborn" in run_dir.name)
        and not (run_dir / "grandchild.pid").exists()
    ):
        assert time.monotonic() < deadline, "the fake trainer did not start"
        time.sleep(0.05)


def pid_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_a_finished_run_reads_back_with_its_metrics_and_output(runs_root):
    run_dir = submit(runs_root, "succeed")
    assert wait_for(run_dir, ("succeeded", "failed")) == "succeeded"
    run = read_run(run_dir)
    assert run.best_val_auc == 0.75 and run.card_id == "meso4.succeed" and run.backend == "local"
    assert "fake trainer started" in (run_dir / "output.log").read_text()
    job = read_json(run_dir / "job.json")
    assert job["pgid"] == job["pid"] and job["argv"][0] == sys.executable
    assert pid_gone(job["pid"]) and read_json(run_dir / "exit.json")["returncode"] == 0


def test_a_crash_is_marked_failed_with_its_error_and_the_log_kept(runs_root):
    run_dir = submit(runs_root, "crash")
    assert wait_for(run_dir, ("failed", "succeeded")) == "failed"
    run = read_run(run_dir)
    assert run.message == "internal error: ValueError: boom"
    assert "Traceback" in (run_dir / "output.log").read_text()  # kept for whoever debugs it
    assert "failed: internal error" in (run_dir / "train.log").read_text()


def test_a_run_killed_by_signal_9_is_reported_as_out_of_memory(runs_root):
    run_dir = submit(runs_root, "oom")
    assert wait_for(run_dir, ("failed", "succeeded")) == "failed"
    assert read_run(run_dir).message.startswith("ran out of memory")
    assert read_json(run_dir / "exit.json")["returncode"] == -signal.SIGKILL


def test_cancel_stops_the_whole_process_group(runs_root):
    run_dir = submit(runs_root, "wait")
    wait_running(run_dir)
    grandchild = int((run_dir / "grandchild.pid").read_text())
    LocalRunner().cancel(run_dir, wait_s=15)
    assert wait_for(run_dir, ("cancelled", "failed", "succeeded")) == "cancelled"
    assert pid_gone(grandchild), "a process of the cancelled run is still alive"
    assert (run_dir / "cancel").exists()


def test_cancel_escalates_to_sigkill_when_sigterm_is_ignored(runs_root):
    run_dir = submit(runs_root, "stubborn")
    wait_running(run_dir)
    grandchild = int((run_dir / "grandchild.pid").read_text())
    started = time.monotonic()
    LocalRunner().cancel(run_dir, wait_s=1.0)
    assert wait_for(run_dir, ("cancelled", "failed", "succeeded")) == "cancelled"
    assert time.monotonic() - started < 10
    assert pid_gone(grandchild)


def test_cpu_queue_runs_one_at_a_time_unless_asked(runs_root):
    first = submit(runs_root, "wait")
    second = submit(runs_root, "succeed")
    assert read_json(first / "job.json")["launched"] and not read_json(second / "job.json")["launched"]
    assert read_run(second).state == "queued"
    beside = submit(runs_root, "succeed", exclusive=False)  # the user asked to run it alongside
    assert read_json(beside / "job.json")["launched"]
    wait_running(first)
    (first / "release").touch()
    assert wait_for(first, ("succeeded", "failed")) == "succeeded"
    assert advance_queue(runs_root) == [second]  # whoever polls starts the next one
    assert wait_for(second, ("succeeded", "failed")) == "succeeded"


def test_gpu_queue_gives_each_run_its_own_gpu(runs_root, monkeypatch):
    two_gpus = Devices("test", 8.0, 64.0, (Gpu(0, "G", 1000), Gpu(1, "G", 1000)))
    monkeypatch.setattr(jobs_local, "local_devices", lambda: two_gpus)
    runs = [submit(runs_root, "wait") for _ in range(3)]
    jobs = [read_json(r / "job.json") for r in runs]
    assert sorted(j["env"]["CUDA_VISIBLE_DEVICES"] for j in jobs[:2]) == ["0", "1"]
    assert not jobs[2]["launched"]
    for run_dir in runs[:2]:
        wait_running(run_dir)
        (run_dir / "release").touch()
        wait_for(run_dir, ("succeeded",))
    assert advance_queue(runs_root) == [runs[2]]
    wait_running(runs[2])
    (runs[2] / "release").touch()
    wait_for(runs[2], ("succeeded",))


def test_cancelling_a_queued_run_means_it_never_starts(runs_root):
    first = submit(runs_root, "wait")
    queued = submit(runs_root, "succeed")
    LocalRunner().cancel(queued)
    assert read_run(queued).state == "cancelled"
    wait_running(first)
    (first / "release").touch()
    wait_for(first, ("succeeded",))
    assert advance_queue(runs_root) == [] and not read_json(queued / "job.json")["launched"]


def test_state_survives_a_server_restart(runs_root):
    """A new server process has no Popen objects: state comes from the folder, even for a run that
    ended while nobody watched (its watcher is then a zombie of the old parent, or reaped by init)."""
    run_dir = submit(runs_root, "oom")
    pid = read_json(run_dir / "job.json")["pid"]
    jobs_local._children.clear()  # what a restart loses
    deadline = time.monotonic() + 30
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert wait_for(run_dir, ("failed",)) == "failed"
    assert read_run(run_dir).message.startswith("ran out of memory")
    os.waitpid(pid, 0)  # the test process is the parent: reap the zombie it kept


def test_a_vanished_process_without_exit_record_is_failed_not_running(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(done.stdout)
    run_dir = new_run_dir(tmp_path / "runs", "meso4", "ghost")
    (run_dir / "status.json").write_text(json.dumps({"state": "running", "epoch": 3}))
    (run_dir / "job.json").write_text(
        json.dumps(
            {
                "backend": "local",
                "launched": "2030-01-01T00:00:00+00:00",
                "pid": dead_pid,
                "pgid": dead_pid,
                "start_ticks": 1,
            }
        )
    )
    LocalRunner().refresh(run_dir)
    run = read_run(run_dir)
    assert run.state == "failed" and "stopped unexpectedly" in run.message


def test_a_reused_pid_is_not_taken_for_the_run():
    me = os.getpid()
    assert process_alive(me, process_start_time(me))
    assert not process_alive(me, process_start_time(me) + 60)  # same pid, another process's start time
    assert not process_alive(me, process_start_time(me) - 3600)


def test_a_launched_run_records_its_process_creation_time(runs_root):
    run_dir = submit(runs_root, "wait")
    wait_running(run_dir)
    job = read_json(run_dir / "job.json")
    assert abs(job["create_time"] - psutil.Process(job["pid"]).create_time()) < 0.01
    assert recorded_process_alive(job) and "start_ticks" not in job
    LocalRunner().cancel(run_dir, wait_s=15)
    assert wait_for(run_dir, ("cancelled",)) == "cancelled" and not recorded_process_alive(job)


def test_a_run_folder_from_before_psutil_is_still_recognised():
    """Older job.json files hold the start time in clock ticks after boot ("start_ticks")."""
    me = psutil.Process()
    ticks = round((me.create_time() - psutil.boot_time()) * os.sysconf("SC_CLK_TCK"))
    assert recorded_process_alive({"pid": me.pid, "start_ticks": ticks})
    assert not recorded_process_alive({"pid": me.pid, "start_ticks": ticks + 60 * os.sysconf("SC_CLK_TCK")})
    assert recorded_process_alive({"pid": me.pid})  # no start time recorded: the pid alone decides
    assert not recorded_process_alive({"pid": None, "start_ticks": ticks})
