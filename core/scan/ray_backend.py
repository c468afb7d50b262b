"""The Ray backend: the scan runs as a job on the cluster the Train page uses, over an actor pool.

Why a job, not a driver here: the address a person has is the dashboard's (``http://HEAD:8265``,
the same as the Train page's), and the Ray Jobs API is how Ray takes work at that address; a driver
on the app's computer would also need to reach every node directly. So :func:`run_on_cluster`
writes the request into RESULTS (``request.json``), submits ``python -m core.scan.ray_driver
RESULTS`` with this project as the job's working directory and this app's ``DFI_*`` settings, and
watches RESULTS for progress; Stop stops the job. RESULTS and SRC must therefore be paths the head
node reaches (the same computer, or a shared file system at the same path), as for the Train page's
runs root.

On the cluster, the driver runs this same engine with :class:`RayActorBackend`: a
``ray.util.ActorPool`` of :class:`ScanActor`, each loading the detectors once. The driver reads each
clip and puts its bytes into Ray's object store, so the worker nodes need no shared file system;
only two clips per actor are in flight, so the store holds no more than that. Each actor reserves
one CPU and :data:`core.scan.local.WORKER_MEMORY_BYTES` of memory, so Ray never places more actors
on a node than its memory holds. An actor whose process dies is restarted by Ray (it loads the
detectors again) and its clip is retried by Ray (``max_restarts``, ``max_task_retries``); the driver
records a clip when its one result arrives, so a retried clip is never counted twice.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from core.files import write_json_atomic
from core.scan.results import ResultsFolder
from core.scan.sources import ClipItem
from core.scan.worker import ClipScanner, ScanJob, error_outcome
from core.settings import PROJECT_ROOT, Settings

REQUEST_FILE = "request.json"
ACTOR_RESTARTS = 3  # a worker may die this often (out of memory, a lost node) before the scan gives up on it
_POLL_S = 1.0
_STOP_WAIT_S = 30.0
_TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


class ScanActor:
    """One Ray actor: a :class:`~core.scan.worker.ClipScanner` (detectors loaded once, in ``__init__``)."""

    def __init__(self, job: ScanJob):
        self.scanner = ClipScanner(job)

    def scan(self, index: int, data: bytes, name: str) -> tuple[int, dict]:
        return index, self.scanner.scan_bytes(data, name)

    def pid(self) -> int:
        return os.getpid()


class RayActorBackend:
    """Clips over an actor pool on the cluster this process is the driver of (see the module docstring)."""

    name = "ray"

    def __init__(self, job: ScanJob, settings: Settings, workers: int | None, clips: int):
        import ray

        from core.scan.local import WORKER_MEMORY_BYTES

        if not ray.is_initialized():
            ray.init(log_to_driver=False)  # inside a job: the job's cluster
        resources = ray.cluster_resources()
        fits = min(
            int(resources.get("CPU", 1)), int(resources.get("memory", WORKER_MEMORY_BYTES) // WORKER_MEMORY_BYTES)
        )
        self.workers = max(1, min(workers or fits, fits, max(clips, 1)))
        remote = ray.remote(
            num_cpus=1, memory=WORKER_MEMORY_BYTES, max_restarts=ACTOR_RESTARTS, max_task_retries=ACTOR_RESTARTS
        )(ScanActor)
        # One reserved CPU per actor, so one math thread each: actors on a node do not compete.
        self.actors = [remote.remote(dataclasses.replace(job, threads=1)) for _ in range(self.workers)]

    def outcomes(self, items: Sequence[ClipItem], stop: threading.Event) -> Iterator[tuple[int, dict]]:
        """(index, outcome) per clip as results arrive; after ``stop`` no clip is submitted."""
        import ray
        from ray.util import ActorPool

        pool = ActorPool(self.actors)
        refs: dict[int, ray.ObjectRef] = {}  # the result of each clip in flight, to tell which one failed

        def call(actor, value):
            refs[value[0]] = actor.scan.remote(*value)
            return refs[value[0]]

        pending = list(range(len(items)))[::-1]  # popped from the end: first clip first
        try:
            while pending or refs:
                while pending and pool.has_free() and not stop.is_set():
                    index = pending.pop()
                    # The bytes travel through the object store: worker nodes need no shared disk.
                    pool.submit(call, (index, ray.put(Path(items[index].path).read_bytes()), items[index].name))
                if not refs:
                    return
                try:
                    index, outcome = pool.get_next_unordered(timeout=_POLL_S)
                except TimeoutError:
                    continue
                except ray.exceptions.RayError as exc:
                    # Ray gave up on a clip (its actor died more than ACTOR_RESTARTS times).
                    why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                    for index in [i for i, ref in refs.items() if _failed(ref)]:
                        del refs[index]
                        yield index, error_outcome(f"the Ray worker analysing this clip was lost ({why})")
                    continue
                del refs[index]
                yield index, outcome
        finally:
            for actor in self.actors:
                ray.kill(actor, no_restart=True)


def _failed(ref) -> bool:
    """True when the task behind ``ref`` has ended with an error (False while it runs or when it succeeded)."""
    import ray

    if not ray.wait([ref], timeout=0)[0]:
        return False
    try:
        ray.get(ref, timeout=0)
    except ray.exceptions.RayError:
        return True
    return False


def run_on_cluster(request, settings: Settings, progress, stop: threading.Event):
    """Submit the scan as a Ray job, follow it through RESULTS, and return its summary.

    Raises:
        RayClusterError: the cluster does not answer or refuses the job. ScanError: the job failed.
    """
    from core.jobs.ray_cluster import WORKING_DIR_EXCLUDES, check_address, client_for, cluster_error, forwarded_env
    from core.scan.engine import ScanError, ScanProgress, ScanSummary, check_out
    from core.scan.worker import model_ids_or_default

    address = check_address(request.ray_address)
    client = client_for(address)
    model_ids = model_ids_or_default(request.model_ids, settings)
    folder = check_out(request.out, request, model_ids)
    folder.root.mkdir(parents=True, exist_ok=True)
    on_cluster = {**request.to_dict(), "ray_address": None, "model_ids": list(model_ids)}
    write_json_atomic(folder.root / REQUEST_FILE, on_cluster)
    submission_id = f"dfi-scan-{uuid.uuid4().hex[:12]}"
    try:
        client.submit_job(
            entrypoint=shlex.join(["python", "-m", "core.scan.ray_driver", str(folder.root)]),
            submission_id=submission_id,
            runtime_env={
                "working_dir": str(PROJECT_ROOT),
                "excludes": WORKING_DIR_EXCLUDES,
                "env_vars": forwarded_env(),
            },
            metadata={"dfi_scan": str(folder.root)},
        )
    except Exception as exc:
        raise cluster_error(address, exc) from None
    folder.update_state(ray_address=address, ray_job=submission_id)
    started = time.monotonic()
    before = seen = len(folder.rows())
    status = None
    try:
        while True:
            status = str(client.get_job_status(submission_id)).rsplit(".", 1)[-1]
            if progress is not None:
                now = _progress(folder, before, seen, started, ScanProgress)
                seen = now.done
                progress(now)
            if status in _TERMINAL:
                break
            if stop.is_set():
                _stop(client, submission_id)
                stop.clear()  # asked once; now wait for the job to end
            time.sleep(_POLL_S)
    finally:
        if status not in _TERMINAL:  # a Stop on a page or Ctrl-C while watching: the job goes too
            _stop(client, submission_id)
    state = folder.state()
    if status == "FAILED":
        raise ScanError(f"the scan job {submission_id} failed on the cluster: {_failure(client, submission_id)}")
    data = state.get("summary")
    if status == "SUCCEEDED" and data:
        return ScanSummary.from_dict(data)
    rows = folder.rows()
    return ScanSummary(
        status="stopped",
        out=folder.root,
        total=int(state.get("total") or len(rows)),
        ok=sum(r["status"] == "ok" for r in rows),
        no_face=sum(r["status"] == "no_face" for r in rows),
        errors=sum(r["status"] == "error" for r in rows),
        analysed_now=len(rows) - before,
        reused=0,
        seconds=round(time.monotonic() - started, 3),
        model_ids=tuple(model_ids),
    )


def _failure(client, submission_id: str) -> str:
    """The job's own ``error:`` line, else the last line of its log, else Ray's message."""
    try:
        logs = (client.get_job_logs(submission_id) or "").strip().splitlines()
        message = client.get_job_info(submission_id).message or ""
    except Exception as exc:  # noqa: BLE001 — the cluster went away after the job ended
        return f"its log could not be read ({type(exc).__name__})"
    error = next((line for line in reversed(logs) if line.startswith("error:")), None)
    return error or (logs[-1] if logs else message.strip().splitlines()[-1] if message.strip() else "no log")


def _progress(folder: ResultsFolder, before: int, seen: int, started: float, progress_type):
    """Progress read back from RESULTS (the job writes it); ``seen`` rows were reported already."""
    rows = folder.rows()
    state = folder.state()
    return progress_type(
        done=len(rows),
        total=int(state.get("total") or len(rows)),
        errors=sum(r["status"] == "error" for r in rows),
        analysed_now=max(0, len(rows) - before),
        elapsed_s=time.monotonic() - started,
        last=rows[-1]["path"] if rows else None,
        new_rows=tuple(rows[seen:]),
    )


def _stop(client, submission_id: str) -> None:
    """Stop the job and wait (a little) until it has ended, so its last rows are written."""
    try:
        client.stop_job(submission_id)
    except Exception:  # noqa: BLE001 — already ended, or the cluster went away: nothing left to stop
        return
    deadline = time.monotonic() + _STOP_WAIT_S
    while time.monotonic() < deadline:
        try:
            if str(client.get_job_status(submission_id)).rsplit(".", 1)[-1] in _TERMINAL:
                return
        except Exception:  # noqa: BLE001
            return
        time.sleep(0.5)
