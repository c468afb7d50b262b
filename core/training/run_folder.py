"""The runs registry: every training run is one folder under the runs root, and this reads them.

A run folder is the whole interface between a training job and whoever watches it, so the Train
page, ``python -m core jobs`` and a restarted server all see the same runs. Besides the trainer's
own files (``spec.json``, ``status.json``, ``metrics.jsonl``, ``train.log``, ``best.weights.h5``;
see :mod:`core.training.runtime`) the job runners add:

- ``job.json``: how the run was launched (backend, command, pid/pgid or Ray submission id, GPUs,
  whether a cancel was asked for);
- ``exit.json``: the exit status of a local training process, written by :mod:`core.jobs.child`;
- ``output.log``: the process's stdout and stderr (local), or the Ray job's logs;
- ``card/``: the model card and weight file a successful run writes (installed into the registry
  only when the user picks "Use this model", see :mod:`core.training.install_run`).

Nothing here imports TensorFlow: listing runs must stay instant.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.files import locked, now_iso, parse_iso, read_json, write_json_atomic

JOB_FILE, EXIT_FILE, STATUS_FILE = "job.json", "exit.json", "status.json"
SPEC_FILE, METRICS_FILE, TRAIN_LOG, OUTPUT_LOG = "spec.json", "metrics.jsonl", "train.log", "output.log"
CARD_DIR = "card"
TERMINAL_STATES = ("succeeded", "failed", "cancelled")


def append_log(run_dir: Path, message: str) -> None:
    """Append one timestamped line to the run's train.log (the log the page shows)."""
    with (Path(run_dir) / TRAIN_LOG).open("a", encoding="utf-8") as handle:
        handle.write(f"{now_iso()} {message}\n")


def finish(run_dir: Path, state: str, message: str) -> bool:
    """Record a terminal state the trainer could not write itself (it crashed, or never started).

    A run that has already ended keeps its end: the check and the write are one step under the
    status lock, so a trainer writing "succeeded" just before a watcher decides it died (or two
    sessions' refreshes at once) cannot be overwritten. Returns whether this call recorded it.
    """
    path = Path(run_dir) / STATUS_FILE
    with locked(path):
        status = read_json(path)
        if status.get("state") in TERMINAL_STATES:
            return False
        write_json_atomic(path, {**status, "state": state, "message": message, "updated": now_iso(), "eta_s": 0})
    append_log(run_dir, f"{state}: {message}")
    return True


def read_metrics(run_dir: Path) -> list[dict]:
    """The per-epoch rows of metrics.jsonl (a half-written last line is skipped)."""
    path = Path(run_dir) / METRICS_FILE
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # the trainer is writing this line right now
            if isinstance(row, dict):
                rows.append(row)
    return rows


def tail(path: Path, lines: int = 20, max_bytes: int = 64 * 1024) -> list[str]:
    """The last ``lines`` lines of a text file (reads at most its last ``max_bytes``)."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - max_bytes))
        text = handle.read().decode("utf-8", errors="replace")
    # Keras progress bars redraw with carriage returns; keep only what a terminal would show.
    shown = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return [line for line in shown if line.strip()][-lines:]


@dataclass(frozen=True)
class RunInfo:
    """One run as the page and the command line show it (plain values, read from its folder).

    Attributes:
        run_id: the folder name. dir: the folder.
        state: queued, running, succeeded, failed or cancelled (after the runner's checks).
        backend: "local" or "ray". arch, tag, data: from spec.json; card_id is ``<arch>.<tag>``.
        created: when it was submitted; started/ended: when training began/finished (ISO, UTC).
        epoch, epochs, eta_s: progress from status.json. best_val_auc: best validation AUC so far.
        message: the last status message (the reason, when it failed).
    """

    run_id: str
    dir: Path
    state: str
    backend: str
    arch: str
    tag: str
    data: str
    created: str | None
    started: str | None
    ended: str | None
    epoch: int | None
    epochs: int | None
    eta_s: float | None
    best_val_auc: float | None
    message: str

    @property
    def card_id(self) -> str:
        return f"{self.arch}.{self.tag}"

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    def duration_s(self, now: datetime | None = None) -> float | None:
        """Seconds from start to end (or to now while it runs); None before it started."""
        start = parse_iso(self.started)
        if start is None:
            return None
        end = parse_iso(self.ended) if self.finished else None
        return max(0.0, ((end or now or datetime.now(UTC)) - start).total_seconds())


def best_val_auc(rows: list[dict]) -> float | None:
    """The highest finite validation AUC over the epochs, or None when there is none."""
    values = [
        float(r["val_auc"]) for r in rows if isinstance(r.get("val_auc"), (int, float)) and math.isfinite(r["val_auc"])
    ]
    return max(values) if values else None


def read_run(run_dir: Path) -> RunInfo:
    """A run as written in its folder (the runners' liveness checks are applied by core.jobs.service)."""
    run_dir = Path(run_dir)
    spec, status, job = (read_json(run_dir / name) for name in (SPEC_FILE, STATUS_FILE, JOB_FILE))
    state = status.get("state") or "queued"
    eta = status.get("eta_s")
    return RunInfo(
        run_id=run_dir.name,
        dir=run_dir,
        state=state,
        backend=job.get("backend", "local"),
        arch=str(spec.get("arch", "?")),
        tag=str(spec.get("tag", "?")),
        data=str(spec.get("data", "")),
        created=job.get("created") or status.get("started"),
        started=status.get("started"),
        ended=status.get("updated") if state in TERMINAL_STATES else None,
        epoch=status.get("epoch"),
        epochs=status.get("epochs") or spec.get("epochs"),
        eta_s=float(eta) if isinstance(eta, (int, float)) else None,
        best_val_auc=best_val_auc(read_metrics(run_dir)),
        message=str(status.get("message") or ""),
    )


def run_dirs(runs_root: Path) -> list[Path]:
    """Run folders under ``runs_root`` (those with a job.json or spec.json), newest first."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and ((p / JOB_FILE).is_file() or (p / SPEC_FILE).is_file())]
    return sorted(found, key=lambda p: (read_json(p / JOB_FILE).get("created", ""), p.name), reverse=True)


def new_run_dir(runs_root: Path, arch: str, tag: str) -> Path:
    """Create and return a fresh, uniquely named run folder ``<arch>.<tag>-<time>[-n]``."""
    root = Path(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    stem = f"{arch}.{tag}-{datetime.now():%Y%m%d-%H%M%S}"
    for n in range(1000):
        candidate = root / (stem if n == 0 else f"{stem}-{n}")
        try:
            candidate.mkdir()  # atomic: two sessions submitting at once get different folders
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"too many runs named {stem} in {root}")
