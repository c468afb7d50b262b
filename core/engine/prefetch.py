"""Run an iterator in a background thread, a bounded number of items ahead of its consumer.

Decoding (FFmpeg inside OpenCV) and face detection (TensorFlow) both release the GIL, so a thread
is enough to decode the next frames while MTCNN works on the ones already read. The queue bound is
what keeps memory bounded: the producer blocks once ``depth`` items wait, so at most ``depth`` + 1
items (the ones queued and the one being made) exist beyond what the consumer holds.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_S = 0.1  # how often a blocked producer checks whether the consumer has gone away


class Prefetched(Generic[T]):
    """Iterate over ``source`` produced in a daemon thread; ``busy_s`` is its time spent producing.

    Use as a context manager (or call :meth:`close`): leaving early stops the producer at its next
    item and closes ``source``, so a file it holds open is released. An exception raised by
    ``source`` is raised again in the consumer, at the point where its item would have come.
    """

    def __init__(self, source: Iterable[T], depth: int, name: str = "prefetch"):
        if depth < 1:
            raise ValueError(f"depth must be at least 1, not {depth}")
        self._source = source
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.busy_s = 0.0  # written by the producer only; read after the end (or as an estimate)
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        iterator = iter(self._source)
        try:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                finally:
                    self.busy_s += time.perf_counter() - started
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put(exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def _put(self, item) -> bool:
        """Queue ``item``, waiting while the queue is full; False when the consumer has gone."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the producer and wait for it (it finishes the item it is making)."""
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue and drop what it made
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()

    def __enter__(self) -> Prefetched[T]:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
