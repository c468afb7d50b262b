"""Launching, watching and cancelling training runs, on this computer or on a Ray cluster.

The one entry point for the Train page and ``python -m core jobs``:

- :func:`submit` checks a training spec (values, data folder inside the data root, a free model
  name), makes the run folder under ``Settings.runs_root`` and hands it to a runner: local
  (:mod:`core.jobs.local`: a process group per run, a queue, one run per GPU) or Ray
  (:mod:`core.jobs.ray_cluster`: ``JobSubmissionClient``). Every run executes the same command,
  ``python -m core train --spec <run>/spec.json``, as an argument list.
- :func:`refresh_runs` brings every unfinished run up to date (a crashed or killed process becomes
  "failed" with its reason, the logs of a Ray job are copied in) and starts queued local runs
  when a slot is free: whoever polls advances the queue. :func:`list_runs` only reads.
- :func:`cancel` stops a run; :func:`core.training.install_run.use_run` installs a succeeded run's model.

State lives only in the run folders (see :mod:`core.training.run_folder`), so a page reload or a server restart
finds every run as it is. A run writes its model card into its own folder (``card/``); it enters
the registry only through "Use this model".
"""

from __future__ import annotations

import sys
from pathlib import Path

from core.errors import DFIError
from core.files import now_iso, read_json, write_json_atomic
from core.jobs.data_folders import resolve_data_folder, summarize_folder
from core.jobs.local import LocalRunner, advance_queue, queue_lock
from core.jobs.ray_cluster import RayRunner
from core.settings import Settings, get_settings
from core.training.run_folder import (
    CARD_DIR,
    JOB_FILE,
    SPEC_FILE,
    STATUS_FILE,
    TERMINAL_STATES,
    RunInfo,
    new_run_dir,
    read_run,
    run_dirs,
)

BACKENDS = ("local", "ray")


class JobError(DFIError):
    """A training job that cannot be submitted or found."""


def runner_for(backend: str, address: str | None = None) -> LocalRunner | RayRunner:
    """The runner of ``backend`` ("local", or "ray" with the cluster's dashboard ``address``)."""
    if backend == "local":
        return LocalRunner()
    if backend == "ray":
        return RayRunner(address or "")
    raise JobError(f"unknown runtime {backend!r}: must be one of {', '.join(BACKENDS)}")


def train_command(spec_path: Path) -> list[str]:
    """The training command for a run, as an argument list (never a shell string)."""
    return [sys.executable, "-m", "core", "train", "--spec", str(spec_path), "--progress", "epoch"]


def check_spec(spec: dict, settings: Settings) -> dict:
    """The spec with family defaults filled in, its data folder resolved and checked.

    Raises:
        JobError / DFIError: a bad value, a data folder outside the data root or not ready to
            train on, or a model name already in the registry.
    """
    data = resolve_data_folder(spec.get("data", ""), settings)
    summary = summarize_folder(data)
    if summary.kind == "raw":
        raise JobError(f"{data} holds clips, not face crops yet: extract the faces first")
    if summary.problems:
        raise JobError(f"{data} cannot be trained on: {summary.problems[0]}")
    from core.training.spec import resolve, spec_from_dict  # loads Keras: only once the data is fine

    resolved = resolve(spec_from_dict({**spec, "data": str(data)})).to_dict()
    import models

    card_id = f"{resolved['arch']}.{resolved['tag']}"
    if card_id in {card.id for card in models.list_models(settings)}:
        raise JobError(f"a model named {card_id} already exists: choose another name for this one")
    return resolved


def submit(
    spec: dict,
    backend: str = "local",
    settings: Settings | None = None,
    *,
    address: str | None = None,
    exclusive: bool = True,
    gpus: int | None = None,
    install_requirements: bool = False,
) -> RunInfo:
    """Check ``spec`` and start (or queue) a training run; returns the run as it is now.

    Args:
        spec: TrainSpec fields (arch, data, tag, epochs…); ``out``, ``cards_dir`` and
            ``weights_dir`` are set here (the run folder, and its ``card/``).
        backend: "local" or "ray".
        address: the Ray cluster's dashboard URL, for the command line only (``jobs submit
            --ray``: its operator chose it on their own machine). Left out, as the Train page
            always does, it is ``settings.ray_address`` (``DFI_RAY_ADDRESS``): what a visitor
            sends never picks where the server sends the project and its settings.
        exclusive: local: wait for a free slot rather than run beside other runs.
        gpus: GPUs for the run (local, when the computer has GPUs: default 1; Ray: reserved on the
            cluster, default none).
        install_requirements: Ray: install requirements.txt in the job's environment.

    Raises:
        JobError / DFIError: see :func:`check_spec`; a Ray cluster that does not answer.
    """
    settings = settings or get_settings()
    if backend == "ray":
        from core.jobs.ray_cluster import check_address

        address = check_address(address or settings.ray_address)  # before any folder is made
    resolved = check_spec(spec, settings)
    runner = runner_for(backend, address)
    run_dir = new_run_dir(settings.runs_root, resolved["arch"], resolved["tag"])
    resolved.update(out=str(run_dir), cards_dir=str(run_dir / CARD_DIR), weights_dir=str(run_dir / CARD_DIR))
    write_json_atomic(run_dir / SPEC_FILE, resolved)
    write_json_atomic(run_dir / STATUS_FILE, {"state": "queued", "message": "waiting to start", "updated": now_iso()})
    argv = train_command(run_dir / SPEC_FILE)
    if backend == "ray":
        runner.submit(run_dir, argv, gpus=gpus or 0, install_requirements=install_requirements)
    else:
        runner.submit(run_dir, argv, exclusive=exclusive, gpus=gpus or 1)
    return read_run(run_dir)


def run_dir_of(run_id: str, settings: Settings) -> Path:
    """The folder of run ``run_id`` (a plain folder name inside the runs root).

    Raises:
        JobError: no such run, or an id that is not a plain name.
    """
    root = settings.runs_root.resolve()
    path = (root / run_id).resolve()
    if not run_id or path.parent != root or not (path / JOB_FILE).is_file():
        raise JobError(f"there is no training run {run_id!r} in {settings.runs_root}")
    return path


def _runner_of(run_dir: Path) -> LocalRunner | RayRunner:
    job = read_json(run_dir / JOB_FILE)
    return runner_for(job.get("backend", "local"), job.get("address"))


def refresh_runs(settings: Settings | None = None) -> list[RunInfo]:
    """Update every unfinished run from its process or Ray job, start queued local runs when a
    slot is free, and return all runs, newest first."""
    settings = settings or get_settings()
    open_runs = [
        d for d in run_dirs(settings.runs_root) if read_json(d / JOB_FILE) and not read_json(d / JOB_FILE).get("closed")
    ]
    # Local runs under the queue lock: two sessions polling at once must not both record an end.
    with queue_lock(settings.runs_root):
        for run_dir in open_runs:
            if read_json(run_dir / JOB_FILE).get("backend", "local") == "local":
                _runner_of(run_dir).refresh(run_dir)
    for run_dir in open_runs:
        if read_json(run_dir / JOB_FILE).get("backend") == "ray":
            _runner_of(run_dir).refresh(run_dir)
    advance_queue(settings.runs_root)
    return list_runs(settings)


def list_runs(settings: Settings | None = None) -> list[RunInfo]:
    """Every run under the runs root as its folder says, newest first (reads only)."""
    settings = settings or get_settings()
    return [read_run(d) for d in run_dirs(settings.runs_root)]


def cancel(run_id: str, settings: Settings | None = None, wait_s: float = 0.0) -> RunInfo:
    """Cancel a queued or running run; a finished one is left as it is.

    Raises:
        JobError: no such run. RayClusterError: the cluster does not answer.
    """
    settings = settings or get_settings()
    run_dir = run_dir_of(run_id, settings)
    if read_json(run_dir / STATUS_FILE).get("state") not in TERMINAL_STATES:
        _runner_of(run_dir).cancel(run_dir, wait_s=wait_s)
        advance_queue(settings.runs_root)  # its slot may be free now
    return read_run(run_dir)
