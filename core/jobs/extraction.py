"""Extracting faces from a folder of clips, in the background, for the Train page.

Finding faces in a few dozen clips takes minutes on a CPU, too long to hold a page while it runs,
so ``python -m core extract-faces SRC OUT`` runs as its own process (own process group, an
argument list), and the page polls its progress: the sources listed in ``OUT/sources.csv`` against
the total counted at start. extract-faces resumes where it stopped, so starting it again after a
crash or a restart finishes the job instead of redoing it.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from core.data.datasets import read_csv_rows, scan_sources
from core.files import locked, now_iso, read_json, write_json_atomic
from core.jobs.data_folders import extraction_target
from core.jobs.local import _children, process_start_time, recorded_process_alive
from core.settings import PROJECT_ROOT, Settings
from core.training.run_folder import tail

STATE_FILE, LOG_FILE = "extract.json", "extract.log"


@dataclass(frozen=True)
class ExtractionProgress:
    """How far an extraction is: ``done`` of ``total`` clips/images; ``error`` when it stopped early."""

    out: Path
    running: bool
    done: int
    total: int
    error: str | None = None

    @property
    def finished(self) -> bool:
        return not self.running and self.error is None and self.done >= self.total > 0


def start_extraction(src: Path, settings: Settings) -> Path:
    """Start extracting faces from ``src`` (a real/ fake/ folder) unless it already runs.

    Returns:
        The dataset folder the crops go to.

    Raises:
        core.data.datasets.DatasetError: ``src`` holds no clips or images under real/ or fake/.
    """
    out = extraction_target(src, settings)
    out.mkdir(parents=True, exist_ok=True)
    # "Is one running? Else spawn" as one step: without the lock two sessions pressing the button
    # together both see none running and start two processes writing the same crops.
    with locked(out / STATE_FILE):
        if recorded_process_alive(read_json(out / STATE_FILE)):
            return out
        total = len(scan_sources(Path(src)))
        with (out / LOG_FILE).open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "core", "extract-faces", str(src), str(out), "--no-progress"],
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _children[proc.pid] = proc
        write_json_atomic(
            out / STATE_FILE,
            {
                "pid": proc.pid,
                "create_time": process_start_time(proc.pid),
                "total": total,
                "src": str(src),
                "started": now_iso(),
            },
        )
    return out


def extraction_progress(out: Path) -> ExtractionProgress:
    """The progress of the extraction into ``out`` (read from its files; never raises)."""
    out = Path(out)
    state = read_json(out / STATE_FILE)
    done = len({r["source"] for r in read_csv_rows(out / "sources.csv")})
    total = int(state.get("total") or 0)
    running = recorded_process_alive(state)
    error = None
    if not running and state and done < total:
        errors = [line for line in tail(out / LOG_FILE, 200) if line.startswith("error:")]
        error = errors[-1].removeprefix("error:").strip() if errors else "face extraction stopped before the end"
    return ExtractionProgress(out, running, done, total, error)
