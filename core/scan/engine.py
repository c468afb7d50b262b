"""The scan engine: SRC → clips identified by sha256 → a backend → RESULTS, resumable.

:func:`run_scan` is the one entry of the command line, ``evaluate``, the Compare page and the Scan
page. It expands SRC (:mod:`core.scan.sources`), hashes every clip, and decides per clip:

* a clip whose sha256 already has a row in RESULTS is done (a resumed or repeated scan skips it;
  a second path with the same bytes gets its own row, marked ``same_as``, without analysis);
* the same bytes twice in one SRC are analysed once and both paths get the outcome;
* every other clip goes to the backend, and its report and row are written the moment it is done.

The backend is the local pool (:mod:`core.scan.local`) or, with a Ray address, a job on the cluster
that runs this same engine there with an actor pool (:mod:`core.scan.ray_backend`). ``stop`` (a
``threading.Event``) ends a scan early: no new clip starts, what finished is kept, and the scan is
marked "stopped"; running it again resumes.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from core.errors import DFIError
from core.files import now_iso
from core.hashing import file_sha256
from core.scan.results import SCAN_SCHEMA, ResultsFolder, TableWriter, p_fake_column, row_for, verdict_column
from core.scan.sources import ClipItem, expand
from core.scan.worker import ERROR, NO_FACE, OK, ScanJob, error_outcome, model_ids_or_default
from core.settings import Settings, get_settings


class ScanError(DFIError):
    """A scan that cannot start or could not finish (bad RESULTS folder, the cluster failed it)."""


@dataclass(frozen=True)
class ScanRequest:
    """What to scan and how. ``items`` (already listed clips) replaces ``src`` when given."""

    out: Path
    src: Path | None = None
    model_ids: tuple[str, ...] | None = None  # None = the registry's defaults, one per family
    frames: int = 32
    aggregation: str = "mean"
    workers: int | None = None  # None = sized from the cores and the memory (local) or the cluster
    ray_address: str | None = None  # the cluster's dashboard address; None = this computer
    items: tuple[ClipItem, ...] | None = None

    def to_dict(self) -> dict:
        """Plain JSON types (what scan.json and the cluster's driver read)."""
        return {
            "out": str(self.out),
            "src": None if self.src is None else str(self.src),
            "model_ids": None if self.model_ids is None else list(self.model_ids),
            "frames": int(self.frames),
            "aggregation": self.aggregation,
            "workers": self.workers,
            "ray_address": self.ray_address,
            "items": None if self.items is None else [[str(i.path), i.name] for i in self.items],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ScanRequest:
        items = data.get("items")
        return cls(
            out=Path(data["out"]),
            src=None if data.get("src") is None else Path(data["src"]),
            model_ids=None if data.get("model_ids") is None else tuple(data["model_ids"]),
            frames=int(data.get("frames", 32)),
            aggregation=data.get("aggregation", "mean"),
            workers=data.get("workers"),
            ray_address=data.get("ray_address"),
            items=None if items is None else tuple(ClipItem(Path(p), n) for p, n in items),
        )


@dataclass(frozen=True)
class ScanProgress:
    """Where a scan stands, after each clip (and while waiting on a cluster)."""

    done: int  # clips with a row in RESULTS, this run's and earlier ones'
    total: int  # clips of SRC
    errors: int
    analysed_now: int  # clips this run analysed (what the rate is measured on)
    elapsed_s: float
    last: str | None = None  # the path of the clip that finished last
    new_rows: tuple[dict, ...] = ()  # the results-table rows written since the previous call

    @property
    def clips_per_min(self) -> float | None:
        return 60.0 * self.analysed_now / self.elapsed_s if self.analysed_now and self.elapsed_s > 0 else None

    @property
    def eta_s(self) -> float | None:
        rate = self.clips_per_min
        return (self.total - self.done) / rate * 60.0 if rate else None


@dataclass(frozen=True)
class ScanSummary:
    """How a scan ended. ``reused``: clips not analysed because RESULTS or SRC had their bytes already."""

    status: str  # "finished" | "stopped"
    out: Path
    total: int
    ok: int
    no_face: int
    errors: int
    analysed_now: int
    reused: int
    seconds: float
    model_ids: tuple[str, ...] = field(default=())

    @property
    def clips_per_min(self) -> float | None:
        return 60.0 * self.analysed_now / self.seconds if self.analysed_now and self.seconds > 0 else None

    @classmethod
    def from_dict(cls, data: dict) -> ScanSummary:
        """The summary :meth:`to_dict` wrote (scan.json's ``summary``)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in data.items() if k in fields}
        return cls(**{**kept, "out": Path(kept["out"]), "model_ids": tuple(kept.get("model_ids") or ())})

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data.update(out=str(self.out), model_ids=list(self.model_ids), clips_per_min=self.clips_per_min)
        return data


class Backend(Protocol):
    name: str

    def outcomes(self, items: Sequence[ClipItem], stop: threading.Event) -> Iterator[tuple[int, dict]]: ...


Progress = Callable[[ScanProgress], None]
BackendFactory = Callable[[ScanJob, Settings, int], Backend]


def run_scan(
    request: ScanRequest,
    settings: Settings | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> ScanSummary:
    """Scan every clip of ``request`` on this computer or on the Ray cluster; see the module docstring.

    Raises:
        SourceError: SRC cannot be read. ScanError: RESULTS is unusable, or the cluster failed the scan.
        UnknownModelError: a model id is not in the registry. RayClusterError: the cluster does not answer.
    """
    settings = settings or get_settings()
    stop = stop or threading.Event()
    if request.ray_address:
        from core.scan.ray_backend import run_on_cluster

        return run_on_cluster(request, settings, progress, stop)
    from core.scan.local import LocalBackend, plan_workers

    return execute(
        request,
        lambda job, s, clips: LocalBackend(job, s, plan_workers(request.workers, clips)),
        settings,
        progress,
        stop,
    )


def check_out(out: Path, request: ScanRequest, model_ids: Sequence[str]) -> ResultsFolder:
    """The RESULTS folder, refused when it is a file or holds a scan made with other options."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ScanError(f"{out} is a file; give a folder for the results")
    folder = ResultsFolder(out)
    before = folder.state()
    if before.get("model_ids") is not None:
        same = (before.get("model_ids"), before.get("frames"), before.get("aggregation")) == (
            list(model_ids),
            int(request.frames),
            request.aggregation,
        )
        if not same:
            raise ScanError(
                f"{out} holds a scan with other models, frames or aggregation "
                f"({', '.join(before.get('model_ids') or [])}; {before.get('frames')} frames): "
                "give another results folder"
            )
    return folder


def execute(
    request: ScanRequest,
    make_backend: BackendFactory,
    settings: Settings,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> ScanSummary:
    """Run the scan here with the backend ``make_backend(job, settings, clips)`` returns."""
    stop = stop or threading.Event()
    report = progress or (lambda p: None)
    model_ids = model_ids_or_default(request.model_ids, settings)
    folder = check_out(request.out, request, model_ids)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dfi-scan-src-") as unpack:
        items = list(request.items) if request.items is not None else expand(request.src, Path(unpack), settings)
        folder.root.mkdir(parents=True, exist_ok=True)
        folder.update_state(
            schema=SCAN_SCHEMA,
            status="running",
            started=now_iso(),
            ended=None,
            src=None if request.src is None else str(request.src),
            model_ids=list(model_ids),
            frames=int(request.frames),
            aggregation=request.aggregation,
            total=len(items),
            error=None,
        )
        tables = TableWriter(folder, model_ids)
        tally = _Tally(len(items), started)
        try:
            todo, waiting, written = _plan(items, folder, model_ids, tally)
            tables.flush()
            report(tally.progress(written))
            job = ScanJob(model_ids, int(request.frames), request.aggregation)
            # Nothing left to analyse (a finished scan run again): no backend, no detectors loaded.
            backend = make_backend(job, settings, len(todo)) if todo else None
            if backend is not None:
                folder.update_state(backend=backend.name, workers=getattr(backend, "workers", None))
            outcomes = backend.outcomes([item for item, _ in todo], stop) if backend is not None else ()
            for index, outcome in outcomes:
                item, sha = todo[index]
                rows = [row_for(item.name, sha, outcome, model_ids)]
                folder.record(rows[0], outcome.get("report"))
                tally.add(outcome["status"], item.name, analysed=True)
                for twin in waiting.pop(sha, []):  # the same bytes under another path
                    rows.append(row_for(twin.name, sha, outcome, model_ids, same_as=item.name))
                    folder.record(rows[-1], None)
                    tally.add(outcome["status"], twin.name)
                tables.maybe()
                report(tally.progress(rows))
        except BaseException as exc:
            tables.flush()
            stopped = not isinstance(exc, Exception)  # a Stop on a page, Ctrl-C
            folder.update_state(
                status="stopped" if stopped else "failed",
                ended=now_iso(),
                error=None if stopped else str(getattr(exc, "message", exc)),
            )
            raise
        tables.flush()
    status = "finished" if tally.done >= tally.total else "stopped"
    summary = tally.summary(status, folder.root, model_ids)
    folder.update_state(status=status, ended=now_iso(), summary=summary.to_dict())
    return summary


def _plan(
    items: Sequence[ClipItem], folder: ResultsFolder, model_ids: Sequence[str], tally: _Tally
) -> tuple[list[tuple[ClipItem, str]], dict[str, list[ClipItem]], list[dict]]:
    """(clips to analyse with their sha256, later paths of the same bytes, rows already there or written now)."""
    done = folder.done()
    have = {(r["path"], r["sha256"]): r for r in folder.rows()}
    written: list[dict] = []
    todo: list[tuple[ClipItem, str]] = []
    first: dict[str, ClipItem] = {}
    waiting: dict[str, list[ClipItem]] = {}
    for item in items:
        try:
            sha = file_sha256(item.path)
        except OSError as exc:
            outcome = error_outcome(f"cannot read {item.name}: {exc.strerror or exc}")
            written.append(row_for(item.name, None, outcome, model_ids))
            folder.record(written[-1], None)
            tally.add(ERROR, item.name)
            continue
        if (item.name, sha) in have:
            written.append(have[(item.name, sha)])
            tally.add(written[-1]["status"], item.name, reused=True)
        elif sha in done:
            earlier = done[sha]
            written.append(row_for(item.name, sha, _outcome_of(earlier, model_ids), model_ids, earlier["path"]))
            folder.record(written[-1], None)
            tally.add(earlier["status"], item.name, reused=True)
        elif sha in first:
            waiting.setdefault(sha, []).append(item)
            tally.reused += 1
        else:
            first[sha] = item
            todo.append((item, sha))
    return todo, waiting, written


def _outcome_of(row: dict, model_ids: Sequence[str]) -> dict:
    """An outcome rebuilt from an earlier row (its report is already in RESULTS)."""
    models = [{"id": m, "p_fake": row.get(p_fake_column(m)), "verdict": row.get(verdict_column(m))} for m in model_ids]
    return {
        "status": row["status"],
        "report": {"models": models},
        "error": row.get("error"),
        "seconds": row.get("seconds"),
    }


class _Tally:
    def __init__(self, total: int, started: float):
        self.total, self.started = total, started
        self.counts = {OK: 0, NO_FACE: 0, ERROR: 0}
        self.done = self.analysed = self.reused = 0
        self.last: str | None = None

    def add(self, status: str, name: str, analysed: bool = False, reused: bool = False) -> None:
        self.counts[status] += 1
        self.done += 1
        self.analysed += analysed
        self.reused += reused
        self.last = name

    def progress(self, rows: Sequence[dict] = ()) -> ScanProgress:
        elapsed = time.monotonic() - self.started
        return ScanProgress(self.done, self.total, self.counts[ERROR], self.analysed, elapsed, self.last, tuple(rows))

    def summary(self, status: str, out: Path, model_ids: Sequence[str]) -> ScanSummary:
        return ScanSummary(
            status=status,
            out=out,
            total=self.total,
            ok=self.counts[OK],
            no_face=self.counts[NO_FACE],
            errors=self.counts[ERROR],
            analysed_now=self.analysed,
            reused=self.reused,
            seconds=round(time.monotonic() - self.started, 3),
            model_ids=tuple(model_ids),
        )
