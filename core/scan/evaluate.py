"""Evaluate models on a labelled folder through the scan engine: ``evaluate`` and the Compare page.

The clips are scanned like any others (once each by sha256, on this computer or on the Ray cluster)
into a RESULTS folder, then every clip's report becomes an evaluation row and the metrics are
measured (core.evaluation.evaluate). Without ``out`` the RESULTS folder is temporary and removed
afterwards, so a stopped evaluation keeps nothing; with ``out`` it stays and a second run resumes.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from core.evaluation.evaluate import clip_row, find_clips, public_row, summarise
from core.scan.engine import ScanProgress, ScanRequest, run_scan
from core.scan.results import ResultsFolder
from core.scan.sources import ClipItem
from core.settings import Settings, get_settings


def evaluate(
    data_dir: Path,
    model_ids: Sequence[str] | None = None,
    frames: int = 32,
    settings: Settings | None = None,
    clips: list[tuple[Path, int]] | None = None,
    aggregation: str = "mean",
    show_progress: bool = False,
    on_clip: Callable[[dict], None] | None = None,
    workers: int | None = 1,
    ray_address: str | None = None,
    out: Path | None = None,
    stop: threading.Event | None = None,
) -> dict:
    """Analyse every clip with the models (through :func:`core.scan.engine.run_scan`) and measure them.

    Args:
        data_dir: folder with ``real/`` and ``fake/`` clips.
        model_ids: card ids; None = the registry's defaults (one per family).
        frames: frames sampled per clip.
        settings: defaults to get_settings().
        clips: evaluate only these (clip, label) pairs (e.g. from ``restrict_to_split``).
        aggregation: per-track aggregation used by the analyzer ("mean", "median", "max").
        show_progress: tqdm bar on stderr.
        on_clip: called with each clip's row (without its frame scores) as soon as it is done.
        workers: 1 (the default) analyses in this process, reusing detectors it has loaded; more
            start a local pool; None sizes the pool from the cores and the memory.
        ray_address: run on that Ray cluster instead (its dashboard address).
        out: keep the scan's RESULTS here (resumable); None = a temporary folder, removed after
            (under the cache folder for Ray, which the cluster must reach as it does the runs root).
        stop: set it to end the evaluation early (the result then covers the clips done).

    Returns:
        The ``dfi.evaluation/1`` result (plain JSON types): ``models`` (metrics, ROC points),
        ``clips`` (one row per clip with each model's p_fake), ``skipped``, ``counts``.

    Raises:
        EvaluationError: nothing to evaluate. UnknownModelError: a bad model id.
        ScanError, RayClusterError: the scan could not run.
    """
    import models

    settings = settings or get_settings()
    data_dir = Path(data_dir)
    clips = clips if clips is not None else find_clips(data_dir)
    ids = list(model_ids) if model_ids else list(models.default_model_ids(settings))
    cards = [models.get_card(i, settings) for i in ids]  # a bad id fails before any slow work
    labels = {Path(p).relative_to(data_dir).as_posix(): (Path(p), y) for p, y in clips}
    items = tuple(ClipItem(path, name) for name, (path, _) in labels.items())

    temporary = out is None
    if temporary:
        parent = settings.cache_dir / "scans" if ray_address else None
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        out = Path(tempfile.mkdtemp(prefix="evaluate-", dir=parent))
    folder = ResultsFolder(out)
    request = ScanRequest(
        out=Path(out),
        model_ids=tuple(ids),
        frames=frames,
        aggregation=aggregation,
        workers=workers,
        ray_address=ray_address,
        items=items,
    )
    bar = _bar(len(items), show_progress)

    def progress(p: ScanProgress) -> None:
        bar.update(p.done - bar.n)
        if on_clip is not None:
            for row in p.new_rows:
                on_clip(public_row(_row(row, labels, data_dir, folder)))

    try:
        run_scan(request, settings, progress, stop)
        rows = {r["path"]: r for r in folder.rows()}
        result_rows = [_row(rows[name], labels, data_dir, folder) for name in labels if name in rows]
    finally:
        bar.close()
        if temporary:
            shutil.rmtree(out, ignore_errors=True)
    return summarise(data_dir, cards, result_rows, frames, aggregation)


def _row(scan_row: dict, labels: dict, data_dir: Path, folder: ResultsFolder) -> dict:
    path, label = labels[scan_row["path"]]
    report = folder.report(scan_row["sha256"]) if scan_row["status"] != "error" else None
    return clip_row(path, label, data_dir, scan_row["status"], report, scan_row.get("error"), scan_row.get("seconds"))


def _bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="evaluate", unit="clip", disable=not enabled)
