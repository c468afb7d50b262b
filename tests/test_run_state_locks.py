"""Run state without races: concurrent writers of one JSON file, and one extraction per dataset.

Every session's 3 s refresh, the job watcher and the trainer write the same ``job.json`` and
``status.json``; these tests run such writers at once and check that nothing raises and nothing is
lost, and that two sessions pressing "Find the faces" together start one extraction, not two.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from core.files import read_json, update_json, write_json_atomic
from core.jobs import extraction
from core.jobs.local import process_start_time
from core.settings import PROJECT_ROOT, get_settings


def test_threads_writing_one_file_at_once_never_fail(tmp_path):
    """A temp name shared by a process's threads made one thread rename the other's file away."""
    path = tmp_path / "job.json"
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(n: int) -> None:
        start.wait()
        try:
            for i in range(200):
                write_json_atomic(path, {"writer": n, "i": i})
        except BaseException as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, f"{len(errors)} writers failed, first: {errors[0]!r}"
    assert read_json(path)["i"] == 199
    assert not list(tmp_path.glob("*.tmp")), "a temp file was left behind"


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from core.files import update_json

    path, key, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    while not go.exists():  # start together, so the read-modify-writes really overlap
        time.sleep(0.005)
    for i in range(int(sys.argv[4])):
        update_json(path, **{key: i})
    """
)


def test_processes_updating_their_own_keys_lose_nothing(tmp_path):
    """An unlocked read-modify-write let one process write back an object without another's key."""
    path, go, rounds = tmp_path / "status.json", tmp_path / "go", 150
    keys = [f"writer{n}" for n in range(4)]
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(path), key, str(go), str(rounds)], cwd=PROJECT_ROOT)
        for key in keys
    ]
    time.sleep(1.0)  # let every interpreter start and wait at the line
    go.touch()
    assert [child.wait(timeout=120) for child in children] == [0] * len(keys)
    assert read_json(path) == dict.fromkeys(keys, rounds - 1)


def test_update_json_merges_under_the_lock(tmp_path):
    path = tmp_path / "job.json"
    update_json(path, a=1)
    assert update_json(path, b=2) == {"a": 1, "b": 2}
    assert (tmp_path / ".job.json.lock").exists()


class _FakeProcess:
    """Stands in for the extract-faces process: "alive" as this test's own process."""

    def __init__(self, argv, **_):
        time.sleep(0.3)  # a real Popen takes a while too: long enough for a second caller to slip in
        self.pid = os.getpid()

    def poll(self):
        return None


def test_two_sessions_starting_one_extraction_start_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DFI_DATA_ROOT", str(tmp_path / "data"))
    settings = get_settings()
    src = settings.data_root / "clips"
    for label in ("real", "fake"):
        (src / label).mkdir(parents=True)
        (src / label / "a.mp4").write_bytes(b"")
    spawned: list[list[str]] = []

    def fake_popen(argv, **options):
        spawned.append(argv)
        return _FakeProcess(argv, **options)

    monkeypatch.setattr(extraction.subprocess, "Popen", fake_popen)
    monkeypatch.setattr(extraction, "process_start_time", lambda pid: process_start_time(os.getpid()))
    start = threading.Barrier(2)
    outs: list[Path] = []

    def press() -> None:
        start.wait()
        outs.append(extraction.start_extraction(src, settings))

    threads = [threading.Thread(target=press) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(spawned) == 1, f"{len(spawned)} extract-faces processes were started for one folder"
    assert outs[0] == outs[1]
    assert read_json(outs[0] / extraction.STATE_FILE)["pid"] == os.getpid()
    extraction._children.pop(os.getpid(), None)


def test_finish_never_overwrites_the_end_the_trainer_recorded(tmp_path):
    """The watcher's "not ended yet? then mark it failed" is one step under the status lock: a
    trainer that wrote "succeeded" between the watcher's check and its write keeps its result."""
    from core.training.run_folder import STATUS_FILE, finish

    update_json(tmp_path / STATUS_FILE, state="succeeded", message="done")
    recorded = finish(tmp_path, "failed", "the training process stopped unexpectedly")
    assert read_json(tmp_path / STATUS_FILE)["state"] == "succeeded"
    assert recorded is False
    update_json(tmp_path / STATUS_FILE, state="running")
    assert finish(tmp_path, "cancelled", "cancelled on request") is True
    assert read_json(tmp_path / STATUS_FILE)["state"] == "cancelled"


def test_the_trainers_status_writes_keep_what_others_wrote(tmp_path):
    """The trainer merges into status.json under its lock instead of writing back its own copy."""
    from core.training.runtime import RunFiles

    files = RunFiles(tmp_path)
    files.set_status(state="running", epoch=1)
    update_json(files.status_path, note="written by another process")
    files.set_status(epoch=2)
    status = read_json(files.status_path)
    assert status["epoch"] == 2 and status["state"] == "running"
    assert status["note"] == "written by another process"
