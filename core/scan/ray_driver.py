"""The scan's driver on a Ray cluster: ``python -m core.scan.ray_driver RESULTS`` (run as a Ray job).

Reads ``RESULTS/request.json`` (written by :func:`core.scan.ray_backend.run_on_cluster`) and runs the
scan engine with the actor-pool backend, writing into RESULTS as clips finish. Ray stops a job with
SIGTERM: that becomes the engine's stop, so the scan is marked stopped and what is done is kept.
Exit status: 0 finished, 130 stopped, 2 bad request (one ``error:`` line, which the submitting
side shows).
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from core.errors import DFIError
from core.files import read_json
from core.scan.engine import ScanRequest, execute
from core.scan.ray_backend import REQUEST_FILE, RayActorBackend
from core.settings import get_settings


def main(argv: list[str]) -> int:
    """Run the scan described in ``argv[1]/request.json``; returns the exit status."""
    if len(argv) != 2:
        print("error: usage: python -m core.scan.ray_driver RESULTS", file=sys.stderr)
        return 2
    data = read_json(Path(argv[1]) / REQUEST_FILE)
    if not data:
        print(f"error: {argv[1]}/{REQUEST_FILE} is missing or unreadable", file=sys.stderr)
        return 2
    request = ScanRequest.from_dict(data)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        summary = execute(
            request,
            lambda job, settings, clips: RayActorBackend(job, settings, request.workers, clips),
            get_settings(),
            stop=stop,
        )
    except DFIError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"{summary.status}: {summary.analysed_now} clips analysed on the cluster in {summary.seconds:.0f} s")
    return 0 if summary.status == "finished" else 130


if __name__ == "__main__":
    sys.exit(main(sys.argv))
