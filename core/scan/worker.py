"""One scan worker: loads the detectors once, then turns clip after clip into an outcome.

The same class serves every backend: the calling process itself (one local worker), each process
of the local pool, and each Ray actor. An outcome is plain data (it crosses process boundaries):
the dfi.report/1 dict without the face crops' pixels, or the clip's one-line error. A clip that
cannot be read is an outcome, not an exception: one bad file must never stop a scan.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import DFIError
from core.settings import Settings, get_settings

OK, NO_FACE, ERROR = "ok", "no_face", "error"
FINAL_STATUSES = (OK, NO_FACE, ERROR)


@dataclass(frozen=True)
class ScanJob:
    """How every clip of one scan is analysed (the same for every worker)."""

    model_ids: tuple[str, ...]
    frames: int = 32
    aggregation: str = "mean"
    threads: int | None = None  # math threads per worker; None = the library's default (all cores)


def limit_threads(threads: int | None) -> None:
    """Cap TensorFlow's and OpenCV's threads before TensorFlow starts (N workers share the cores).

    Why: each worker would otherwise start one math thread per core, and N workers on C cores then
    fight over them (N x C threads), which is slower than the cores working one clip each.
    """
    if not threads:
        return
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import cv2
    import tensorflow as tf

    cv2.setNumThreads(threads)
    with contextlib.suppress(RuntimeError):  # already initialised (the calling process): keep its setting
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)


def error_outcome(message: str, seconds: float = 0.0) -> dict:
    """The outcome of a clip that could not be analysed."""
    return {"status": ERROR, "report": None, "error": message, "seconds": round(seconds, 3)}


class ClipScanner:
    """Analyses clips with detectors loaded once (in ``__init__``)."""

    def __init__(self, job: ScanJob, settings: Settings | None = None):
        limit_threads(job.threads)
        from core.engine import analysis  # TensorFlow loads here, in the worker

        self.job = job
        self.settings = settings or get_settings()
        with contextlib.redirect_stdout(sys.stderr):  # Keras prints; a worker's stdout is nobody's
            self.loaded = analysis.load_models(list(job.model_ids), self.settings)

    def scan_path(self, path: str | Path) -> dict:
        """The outcome of one clip file (see the module docstring)."""
        from core.engine import analysis

        start = time.perf_counter()
        try:
            with contextlib.redirect_stdout(sys.stderr):
                report = analysis.analyze_loaded(
                    path, self.loaded, self.job.frames, self.settings, aggregation=self.job.aggregation
                )
        except DFIError as exc:
            return error_outcome(exc.message, time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 — one broken clip must not end the scan
            return error_outcome(f"{type(exc).__name__}: {exc}".splitlines()[0], time.perf_counter() - start)
        data = report.to_dict()  # the JSON contract; the crops' pixels stay behind
        return {
            "status": OK if data["status"] == "ok" else NO_FACE,
            "report": data,
            "error": None,
            "seconds": round(time.perf_counter() - start, 3),
        }

    def scan_bytes(self, data: bytes, name: str) -> dict:
        """The outcome of a clip given as its bytes (from Ray's object store), read as ``name``."""
        with tempfile.TemporaryDirectory(prefix="dfi-scan-") as tmp:
            # The clip keeps its own file name, so the report names it as a local scan would.
            path = Path(tmp) / (Path(name).name or "clip")
            path.write_bytes(data)
            return self.scan_path(path)


# The local pool's per-process scanner (set by init_pool_worker in each worker process).
_POOL_SCANNER: ClipScanner | None = None


def init_pool_worker(job: ScanJob, settings: Settings) -> None:
    """ProcessPoolExecutor initializer: load the detectors once in this worker process."""
    global _POOL_SCANNER
    _POOL_SCANNER = ClipScanner(job, settings)


def pool_scan(path: str) -> dict:
    """ProcessPoolExecutor task: one clip with this process's scanner."""
    assert _POOL_SCANNER is not None, "init_pool_worker did not run"
    return _POOL_SCANNER.scan_path(path)


def model_ids_or_default(model_ids: Sequence[str] | None, settings: Settings) -> tuple[str, ...]:
    """The ids to scan with, each checked against the registry (an unknown id fails before any work)."""
    import models

    ids = tuple(model_ids) if model_ids else tuple(models.default_model_ids(settings))
    for model_id in ids:
        models.get_card(model_id, settings)
    return ids
