"""The Ray backend: the same training command, submitted to a Ray cluster's job server.

For when the app's computer has no GPU but a cluster does. The run folder is created here, under
the runs root, and the cluster writes into it: the runs root must be a path both sides reach (the
same computer, or a shared file system mounted at the same path), and so must the dataset. The
job's runtime environment carries the project code (``working_dir`` = this project, without its
tests, samples and virtual environment), the ``DFI_*`` settings of this app, and, when asked, the
project's pinned requirements (``pip``; off by default, since a cluster image with TensorFlow
installed starts in seconds instead of minutes). Status, logs and cancel go through
``ray.job_submission.JobSubmissionClient``, every request with a timeout; the logs are copied into
the run folder's output.log, so they stay readable after the cluster is gone.

Which cluster: the one the server was started with (``DFI_RAY_ADDRESS``, ``Settings.ray_address``)
for every run the Train page submits; only the command line (``jobs submit --ray``), run by whoever
operates the server, may name another. A run's ``job.json`` keeps the address it was submitted to,
and watching or cancelling it goes there. Multi-GPU training inside the job is
tf.distribute's MirroredStrategy (core/training/runtime.py), over every GPU Ray gives the job.
"""

from __future__ import annotations

import functools
import os
import shlex
import time
from pathlib import Path
from urllib.parse import urlparse

import requests

from core.errors import DFIError
from core.files import locked, now_iso, read_json, update_json, write_bytes_atomic
from core.jobs.devices import NVIDIA_SMI_QUERY, PROBE_TIMEOUT_S, Devices, Gpu, parse_nvidia_smi
from core.jobs.local import OOM_MESSAGE
from core.settings import PROJECT_ROOT
from core.training.run_folder import JOB_FILE, OUTPUT_LOG, finish

# Not shipped to the cluster: big or irrelevant to training (the cluster reads data from its path).
WORKING_DIR_EXCLUDES = [
    ".git",
    ".venv",
    "**/__pycache__",
    ".pytest_cache",
    ".benchmarks",
    "tests",
    "samples",
    "*.log",
    "node_modules",
]
CHECK_TIMEOUT_S = 5.0
# Seconds a job-server request may wait for the next bytes (uploading the project included); Ray's
# client passes no timeout of its own, so a cluster that accepts a connection and then says nothing
# would hold the page's refresh forever.
REQUEST_TIMEOUT_S = 30.0


class RayClusterError(DFIError):
    """The Ray cluster cannot be reached or refused the request."""


def cluster_error(address: str, exc: BaseException) -> RayClusterError:
    """A plain message for a failed call to the cluster (the cause's first line kept at the end)."""
    cause = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return RayClusterError(f"the Ray cluster at {address} did not answer as expected ({cause})")


def check_address(address: str | None) -> str:
    """The cluster's dashboard URL, normalised, once it has answered as a Ray job server.

    Raises:
        RayClusterError: no address, a ray:// client address, or nothing (or not Ray) answers there.
    """
    address = (address or "").strip().rstrip("/")
    if not address:
        raise RayClusterError("give the Ray cluster's address: its dashboard, e.g. http://127.0.0.1:8265")
    if address.startswith("ray://"):
        raise RayClusterError(
            f"{address} is a Ray Client address; give the cluster's dashboard address instead, e.g. http://HOST:8265"
        )
    if "://" not in address:
        address = f"http://{address}"
    parsed = urlparse(address)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise RayClusterError(f"{address!r} is not an address like http://HOST:8265")
    try:
        answer = requests.get(f"{address}/api/version", timeout=CHECK_TIMEOUT_S)
    except requests.RequestException:
        raise RayClusterError(
            f"the Ray cluster at {address} does not answer: check the address, and that "
            "the cluster runs (ray start --head) with its dashboard"
        ) from None
    try:
        known = answer.status_code == 200 and "ray_version" in answer.json()
    except ValueError:
        known = False
    if not known:
        raise RayClusterError(
            f"{address} answers, but not as a Ray cluster's job server "
            f"(HTTP {answer.status_code}); check the port (the dashboard's, usually 8265)"
        )
    return address


@functools.cache
def _timed_client_class():
    """JobSubmissionClient with a timeout on every request (made on first use: Ray loads slowly)."""
    from ray.job_submission import JobSubmissionClient

    class TimedJobSubmissionClient(JobSubmissionClient):
        # Every request of the client, its constructor's version checks included, goes through
        # _do_request, which forwards keyword arguments to requests.request.
        def _do_request(self, method, endpoint, **kwargs):
            kwargs.setdefault("timeout", (CHECK_TIMEOUT_S, REQUEST_TIMEOUT_S))
            return super()._do_request(method, endpoint, **kwargs)

    return TimedJobSubmissionClient


def client_for(address: str):
    """A JobSubmissionClient for a checked address (one HTTP round trip), with request timeouts."""
    try:
        return _timed_client_class()(address)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError or ValueError here
        raise cluster_error(address, exc) from None


def forwarded_env() -> dict[str, str]:
    """This app's DFI_* settings (and Keras' cache), so the job sees the same folders on a shared disk."""
    keep = ("DFI_", "KERAS_HOME", "TF_CPP_MIN_LOG_LEVEL")
    return {k: v for k, v in os.environ.items() if k.startswith(keep)}


def requirement_lines() -> list[str]:
    """The pinned runtime requirements (requirements.txt without comments)."""
    lines = (PROJECT_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


class RayRunner:
    """Runs training as jobs on the Ray cluster at ``address``."""

    backend = "ray"

    def __init__(self, address: str):
        self.address = address

    def submit(self, run_dir: Path, argv: list[str], gpus: int = 0, install_requirements: bool = False) -> None:
        """Submit the run's command as a Ray job (submission id ``dfi-<run id>``).

        Args:
            run_dir: the run folder (spec.json and status.json written), on a shared path.
            argv: the command as an argument list; its interpreter is replaced by the cluster's
                ``python``.
            gpus: GPUs to reserve for the job (0 = CPU only).
            install_requirements: let Ray install requirements.txt into the job's environment.

        Raises:
            RayClusterError: the cluster does not answer or refuses the job (the run is marked failed).
        """
        run_dir = Path(run_dir)
        submission_id = f"dfi-{run_dir.name}"
        # Ray's entrypoint is a shell string by its API: shlex.join quotes every argument, so a path
        # with spaces or shell characters stays one argument and is never interpreted by the shell.
        entrypoint = shlex.join(["python", *argv[1:]])
        runtime_env: dict = {
            "working_dir": str(PROJECT_ROOT),
            "excludes": WORKING_DIR_EXCLUDES,
            "env_vars": forwarded_env(),
        }
        if install_requirements:
            runtime_env["pip"] = {"packages": requirement_lines()}
        update_json(
            run_dir / JOB_FILE,
            backend=self.backend,
            address=self.address,
            submission_id=submission_id,
            entrypoint=entrypoint,
            created=now_iso(),
            launched=None,
            gpus=int(gpus),
            cancel_requested=False,
        )
        try:
            client = client_for(check_address(self.address))
            client.submit_job(
                entrypoint=entrypoint,
                submission_id=submission_id,
                runtime_env=runtime_env,
                entrypoint_num_gpus=gpus or None,
                metadata={"dfi_run": run_dir.name},
            )
        except RayClusterError as exc:
            finish(run_dir, "failed", exc.message)
            raise
        except Exception as exc:
            error = cluster_error(self.address, exc)
            finish(run_dir, "failed", error.message)
            raise error from None
        update_json(run_dir / JOB_FILE, launched=now_iso())

    def refresh(self, run_dir: Path) -> None:
        """Copy the job's new log lines into the run folder and record how it ended when it has.

        A cluster that does not answer leaves the run as it is (it may come back); the reason is
        kept in job.json ``unreachable`` for the page to show. One refresh of a run at a time:
        while another session polls this run, this call returns at once (its result is theirs).
        """
        run_dir = Path(run_dir)
        with locked(run_dir / OUTPUT_LOG, wait=False) as mine:
            if mine:
                self._refresh(run_dir)

    def _refresh(self, run_dir: Path) -> None:
        job = read_json(run_dir / JOB_FILE)
        if job.get("closed") or not job.get("launched"):
            return
        try:
            client = client_for(check_address(job["address"]))
            info = client.get_job_info(job["submission_id"])
            logs = client.get_job_logs(job["submission_id"])
        except Exception as exc:
            message = exc.message if isinstance(exc, DFIError) else cluster_error(job["address"], exc).message
            update_json(run_dir / JOB_FILE, unreachable=message)
            return
        append_new_part(run_dir / OUTPUT_LOG, logs)
        update_json(run_dir / JOB_FILE, unreachable=None, ray_status=str(info.status))
        if not info.status.is_terminal():
            return
        # finish() keeps an end the trainer recorded itself (it checks under the status lock).
        if job.get("cancel_requested") or str(info.status) == "STOPPED":
            finish(run_dir, "cancelled", "cancelled on request")
        else:
            finish(run_dir, "failed", _failure_message(info, logs))
        update_json(run_dir / JOB_FILE, closed=True)

    def cancel(self, run_dir: Path, wait_s: float = 0.0) -> None:
        """Ask the trainer to stop cleanly (cancel file) and Ray to stop the job."""
        run_dir = Path(run_dir)
        job = update_json(run_dir / JOB_FILE, cancel_requested=True)
        (run_dir / "cancel").touch()
        if not job.get("launched"):
            finish(run_dir, "cancelled", "cancelled before it started")
            return
        try:
            client_for(check_address(job["address"])).stop_job(job["submission_id"])
        except DFIError:
            raise
        except Exception as exc:
            raise cluster_error(job["address"], exc) from None
        self.refresh(run_dir)


def append_new_part(path: Path, logs: str) -> None:
    """Append to ``path`` the part of ``logs`` it does not hold yet.

    Ray's job server has no offset to ask from, so each poll fetches the whole log; but only what
    is new is written, and what was copied before is never rewritten (a reader tailing the file
    sees it grow). A log shorter than the copy (the job's log started over) replaces it.
    """
    data = logs.encode("utf-8", errors="replace")
    have = path.stat().st_size if path.is_file() else 0
    if have > len(data):
        write_bytes_atomic(path, data)
    elif have < len(data):
        with path.open("ab") as out:
            out.write(data[have:])


def _failure_message(info, logs: str) -> str:
    code = getattr(info, "driver_exit_code", None)
    if code in (137, -9):  # 128 + SIGKILL through the job's shell, or the signal itself
        return OOM_MESSAGE
    errors = [line for line in logs.splitlines() if line.startswith("error:")]
    if errors:
        return errors[-1].removeprefix("error:").strip()
    first = (info.message or "").strip().splitlines()
    return f"the Ray job failed: {first[0]}" if first else "the Ray job failed; see the log"


def ray_devices(address: str) -> Devices:
    """The resources of every live node of the Ray cluster at ``address`` (its dashboard URL).

    Raises:
        core.errors.DFIError: the cluster does not answer (see :func:`core.jobs.ray_cluster.check_address`).
    """
    address = check_address(address)  # before importing Ray: a bad address must not pay for it
    from ray.util.state import list_nodes

    try:
        nodes = [n for n in list_nodes(address=address, detail=True, timeout=15) if n.state == "ALIVE"]
    except Exception as exc:  # the state API raises several unrelated types when a node is down
        raise cluster_error(address, exc) from None
    cpus = sum(float(n.resources_total.get("CPU", 0)) for n in nodes)
    memory = sum(float(n.resources_total.get("memory", 0)) for n in nodes) / 1024**3
    gpus: list[Gpu] = []
    for n in nodes:
        kind = (n.labels or {}).get("ray.io/accelerator-type", "GPU")
        gpus += [Gpu(i, kind, None, n.node_ip) for i in range(int(n.resources_total.get("GPU", 0)))]
    notes = [f"{len(nodes)} node{'s' if len(nodes) != 1 else ''} in the cluster"]
    if gpus:
        probed = _probe_gpu_memory(client_for(address))
        if probed:
            gpus = list(probed)
        else:
            notes.append("the cluster did not say how much memory its GPUs have")
    return Devices(f"Ray cluster at {address}", cpus, memory, tuple(gpus), tuple(notes))


def _probe_gpu_memory(client) -> tuple[Gpu, ...]:
    """Run nvidia-smi as a tiny job on the cluster; () when it fails or takes too long."""
    import shlex

    try:
        # Ray's entrypoint is a shell string by its API; shlex.join quotes the argument list.
        job = client.submit_job(entrypoint=shlex.join(["nvidia-smi", *NVIDIA_SMI_QUERY]))
        deadline = time.monotonic() + PROBE_TIMEOUT_S
        while not client.get_job_status(job).is_terminal():
            if time.monotonic() > deadline:
                client.stop_job(job)
                return ()
            time.sleep(0.5)
        return parse_nvidia_smi(client.get_job_logs(job), node="cluster")
    except Exception:  # a probe is a nicety: any failure just means "memory unknown"
        return ()
