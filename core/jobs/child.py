"""The watcher of one local job: ``python -m core.jobs.child RUN_DIR``.

:mod:`core.jobs.local` starts this small process as the leader of a new process group; it starts
the job's command (``job.json`` ``argv``, an argument list) in the same group, sends its output to
``output.log`` and, when it ends, writes ``exit.json`` with its exit status. That file is how a
crash is told apart from a run that was killed by the system for using too much memory (signal 9)
even after the web server that launched the job has restarted: the server is not the job's
parent any more, so it could not learn the exit status otherwise.

Cancelling signals the whole group: the training process turns SIGTERM into a clean cancel, and
this watcher ignores SIGTERM so that it can still record how the training process ended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from core.files import now_iso, read_json, write_json_atomic
from core.training.run_folder import EXIT_FILE, JOB_FILE, OUTPUT_LOG


def watch(run_dir: Path) -> int:
    """Run the job's command to its end and record its exit status; returns that status.

    Args:
        run_dir: the run folder holding ``job.json`` (its ``argv`` and optional ``env``).
    """
    run_dir = Path(run_dir)
    job = read_json(run_dir / JOB_FILE)
    argv = job.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        write_json_atomic(
            run_dir / EXIT_FILE, {"returncode": 2, "ended": now_iso(), "error": "job.json holds no command"}
        )
        return 2
    # A Python handler, not SIG_IGN: an ignored signal would stay ignored in the child after exec,
    # and the training process must receive SIGTERM to stop cleanly.
    signal.signal(signal.SIGTERM, lambda *_: None)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **{str(k): str(v) for k, v in job.get("env", {}).items()}}
    with (run_dir / OUTPUT_LOG).open("ab") as out:
        try:
            child = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=job.get("cwd") or None,
                env=env,
            )
        except OSError as exc:
            write_json_atomic(
                run_dir / EXIT_FILE,
                {"returncode": 127, "ended": now_iso(), "error": f"cannot start {argv[0]}: {exc.strerror}"},
            )
            return 127
        code = child.wait()
    # returncode < 0 means "killed by signal -returncode" (subprocess's convention).
    write_json_atomic(run_dir / EXIT_FILE, {"returncode": code, "ended": now_iso()})
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m core.jobs.child RUN_DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(watch(Path(sys.argv[1])))
