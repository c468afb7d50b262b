"""The local backend: clips analysed by worker processes on this computer.

How many workers: one per core, but never more than the memory holds — each worker holds its own
TensorFlow, both detectors and one decoded clip, counted as :data:`WORKER_MEMORY_BYTES`
(Xception + MesoNet + MTCNN on a 1080p clip, 32 frames). Each worker gets ``cores // workers``
math threads, so two workers on two cores do not start four threads each.

One worker runs in the calling process itself (no second copy of TensorFlow, and the detectors the
process already loaded are reused: the Compare page's server keeps them between runs). More run in
a ``ProcessPoolExecutor`` with the ``spawn`` start method (TensorFlow's threads do not survive a
``fork``); its initializer loads the detectors once per process. At most two clips per worker are
queued (one running, one ready), so the queue itself never holds more than that. A worker that
dies (the system killed it for memory) breaks the pool: a fresh pool is started and the clips that
were in flight are tried once more, then recorded as errors, so a scan still ends.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

import psutil

from core.scan.sources import ClipItem
from core.scan.worker import ClipScanner, ScanJob, error_outcome, init_pool_worker, pool_scan
from core.settings import Settings

log = logging.getLogger(__name__)

# Peak resident memory of one worker process (see the module docstring): measured 1.71 GB (pool
# worker, the 69 shared clips at 32 frames with both default detectors; scripts/scan_throughput.py),
# rounded up to 2 GiB so that a node is never filled to the last byte.
WORKER_MEMORY_BYTES = 2 * 2**30
# Memory left to everything else on the computer (the web server, the scan's own process).
MEMORY_RESERVE_BYTES = int(1.0 * 2**30)
_POLL_S = 0.5
# A running clip gets this long to finish after a stop; a worker this long to exit after its last clip.
_FINISH_S = 120.0
_EXIT_S = 15.0
_TRIES = 2


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, not merely the machine's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def memory_workers(available: int | None = None) -> int:
    """How many workers the available memory holds (at least one)."""
    available = psutil.virtual_memory().available if available is None else available
    return max(1, (available - MEMORY_RESERVE_BYTES) // WORKER_MEMORY_BYTES)


def plan_workers(requested: int | None, clips: int) -> int:
    """The number of workers: ``requested`` or one per core, capped by memory and by the clip count."""
    wanted = requested or usable_cores()
    allowed = memory_workers()
    if wanted > allowed:
        log.warning("%d workers asked for, but the free memory holds %d: using %d", wanted, allowed, allowed)
    return max(1, min(wanted, allowed, max(clips, 1)))


class LocalBackend:
    """Analyses clips with ``workers`` processes (see the module docstring)."""

    name = "local"

    def __init__(self, job: ScanJob, settings: Settings, workers: int):
        self.job, self.settings, self.workers = job, settings, max(1, int(workers))

    def outcomes(self, items: Sequence[ClipItem], stop: threading.Event) -> Iterator[tuple[int, dict]]:
        """(index into ``items``, outcome) for each clip as it finishes; stops early when ``stop`` is set.

        After ``stop`` no new clip is started; the ones already running finish and are yielded.
        """
        if self.workers == 1:
            yield from self._inline(items, stop)
        else:
            yield from self._pool(items, stop)

    def _inline(self, items: Sequence[ClipItem], stop: threading.Event) -> Iterator[tuple[int, dict]]:
        scanner = ClipScanner(dataclasses.replace(self.job, threads=None), self.settings)
        for index, item in enumerate(items):
            if stop.is_set():
                return
            yield index, scanner.scan_path(item.path)

    def _pool(self, items: Sequence[ClipItem], stop: threading.Event) -> Iterator[tuple[int, dict]]:
        job = dataclasses.replace(self.job, threads=max(1, usable_cores() // self.workers))
        todo = list(range(len(items)))[::-1]  # popped from the end: first clip first
        tries = dict.fromkeys(todo, 0)
        while todo:
            with ProcessPoolExecutor(
                self.workers,
                mp_context=get_context("spawn"),
                initializer=init_pool_worker,
                initargs=(job, self.settings),
            ) as pool:
                running: dict[Future, int] = {}
                try:
                    while todo or running:
                        while todo and len(running) < 2 * self.workers and not stop.is_set():
                            index = todo.pop()
                            tries[index] += 1
                            running[pool.submit(pool_scan, str(items[index].path))] = index
                        if not running:
                            return  # stopped with nothing left running
                        finished, _ = wait(running, timeout=_POLL_S, return_when=FIRST_COMPLETED)
                        for future in finished:
                            index = running.pop(future)
                            yield index, future.result()
                except BrokenProcessPool:
                    lost = sorted(running.values())
                    log.warning("a scan worker died; %d clips in flight are tried again", len(lost))
                    for index in lost:
                        if tries[index] >= _TRIES:
                            yield index, error_outcome("the worker analysing this clip died twice (out of memory?)")
                        else:
                            todo.append(index)
                    todo.sort(reverse=True)
                finally:
                    # Also when the caller stops reading (a Stop on the page): the queued clips are
                    # dropped and only the running ones finish before the pool goes.
                    workers = list((pool._processes or {}).values())  # noqa: SLF001 - to reap them below
                    for future in running:
                        try:  # let clips already running finish, within a bound
                            future.result(timeout=_FINISH_S)
                        except Exception:  # noqa: BLE001 - their outcome was not asked for any more
                            pass
                    pool.shutdown(wait=False, cancel_futures=True)
                    _reap(workers)


def _reap(workers) -> None:
    """Wait for pool workers to exit, and end the ones that do not.

    A worker that has finished its last clip can still hang while its interpreter shuts down
    (TensorFlow's thread pools at exit): seen in CI as a scan whose every clip was done but whose
    pool never closed. Waiting ``_EXIT_S`` and then terminating (then killing) bounds that.
    """
    for process in workers:
        process.join(_EXIT_S)
        if process.is_alive():
            log.warning("scan worker %s did not exit after its last clip; ending it", process.pid)
            process.terminate()
            process.join(5.0)
            if process.is_alive():
                process.kill()
                process.join(5.0)
