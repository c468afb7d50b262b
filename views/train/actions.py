"""What the Train page does, without drawing anything: start a run from the form's values, poll the
runs, install a finished run's model, and turn runs into table rows and plain words.

Kept free of widgets so tests (and the integration test that follows a real job to success) call
exactly what the page calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import models
from core.errors import DFIError
from core.files import parse_iso, read_json
from core.jobs import service as jobs
from core.settings import Settings
from core.training.install_run import use_run
from core.training.run_folder import JOB_FILE, OUTPUT_LOG, TRAIN_LOG, RunInfo, tail

ARCH_NAMES = {name: f"{arch.display_name}: {arch.summary}" for name, arch in models.ARCHITECTURES.items()}
STATE_WORDS = {
    "queued": "⏳ waiting",
    "running": "▶️ training",
    "succeeded": "✅ finished",
    "failed": "❌ failed",
    "cancelled": "⏹ cancelled",
}


@dataclass(frozen=True)
class TrainForm:
    """The form's values. ``backend`` "local" or "ray"; ``parallel``: start beside other local runs;
    ``install_requirements``: Ray installs requirements.txt for the job (a cluster without them).

    No cluster address: a page's run goes to the cluster the server was configured with
    (``DFI_RAY_ADDRESS``), never to one a visitor names.
    """

    arch: str
    init: str
    tag: str
    data: str
    epochs: int
    batch: int
    lr: float
    augment: bool = True
    backend: str = "local"
    parallel: bool = False
    gpus: int | None = None
    install_requirements: bool = False


def family_defaults(arch: str) -> dict:
    """Batch size, learning rate and epochs the form starts with for ``arch``."""
    from core.training.spec import FAMILY_DEFAULTS, SUGGESTED_EPOCHS

    family = models.ARCHITECTURES[arch].family
    return {**FAMILY_DEFAULTS[family], "epochs": SUGGESTED_EPOCHS[family]}


def init_choices(arch: str, settings: Settings) -> dict[str, str]:
    """Starting points for ``arch``, best first: ImageNet (Xception, only when its file is where
    training reads it, ``settings.imagenet_weights_file()``: the page never downloads), installed
    cards of ``arch``, random.

    Xception learns slowly from scratch on a CPU, so an installed Xception card comes before
    "from scratch"; MesoNet is small enough that scratch stays its first choice.
    """
    scratch = {"random": "Nothing: learn from scratch"}
    cards = {
        card.id: f"{card.display_name} ({card.id}): continue from this model"
        for card in models.list_models(settings)
        if card.architecture == arch and models.weights_status(card, settings).ok
    }
    if arch != "xception":
        return {**scratch, **cards}
    imagenet = (
        {"imagenet": "ImageNet: general photos (recommended)"} if settings.imagenet_weights_file().is_file() else {}
    )
    return {**imagenet, **cards, **scratch}


def default_tag() -> str:
    """A fresh model name, e.g. ``mine-0612-1430`` (the model's id becomes ``<arch>.<name>``)."""
    return f"mine-{datetime.now():%m%d-%H%M}"


def start_run(form: TrainForm, settings: Settings) -> RunInfo:
    """Submit the form as a training run (local or Ray); returns the new run.

    Raises:
        DFIError: bad values, a data folder outside the data root or not ready, a taken name, no
            Ray cluster configured for this server, or one that does not answer.
    """
    if form.backend == "ray" and not settings.ray_address:
        raise DFIError(
            "no Ray cluster is set up for this server: whoever runs it can start it with "
            "DFI_RAY_ADDRESS=http://HEAD:8265 to offer one"
        )
    spec = {
        "arch": form.arch,
        "data": form.data,
        "tag": form.tag.strip(),
        "init": form.init,
        "epochs": int(form.epochs),
        "batch": int(form.batch),
        "lr": float(form.lr),
        "augment": bool(form.augment),
    }
    return jobs.submit(
        spec,
        form.backend,
        settings,
        exclusive=not form.parallel,
        gpus=form.gpus,
        install_requirements=form.install_requirements,
    )


def poll_runs(settings: Settings) -> list[RunInfo]:
    """Every run, brought up to date (this also starts queued runs when a slot is free)."""
    return jobs.refresh_runs(settings)


def cancel_run(run: RunInfo, settings: Settings) -> RunInfo:
    """Cancel a waiting or running run."""
    return jobs.cancel(run.run_id, settings)


def install_run(run: RunInfo, settings: Settings, replace: bool = False) -> models.ModelCard:
    """ "Use this model": install the run's card so the Analyze and Compare pages offer it."""
    return use_run(run.dir, settings, replace=replace)


def format_seconds(seconds: float | None) -> str:
    """``1 h 05 min``, ``3 min 20 s``, ``12 s``, or an empty string for None."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def table_rows(runs: list[RunInfo]) -> list[dict]:
    """One row per run for the runs table: state, model, data, started, duration, best AUC."""
    rows = []
    for run in runs:
        started = parse_iso(run.started or run.created)
        rows.append(
            {
                "Run": run.run_id,
                "State": STATE_WORDS.get(run.state, run.state),
                "Model": run.card_id,
                "Data": run.data.rsplit("/", 1)[-1],
                "Where": "Ray cluster" if run.backend == "ray" else "this computer",
                "Started": f"{started.astimezone():%Y-%m-%d %H:%M}" if started else "",  # server-local time
                "Duration": format_seconds(run.duration_s()),
                "Best validation AUC": None if run.best_val_auc is None else round(run.best_val_auc, 3),
            }
        )
    return rows


def progress_words(run: RunInfo) -> str:
    """Where the run is, in words: epoch, time left, or how it ended."""
    if run.state == "queued":
        if read_json(run.dir / JOB_FILE).get("launched"):
            return "Starting up (loading the training libraries takes a few seconds)."
        return "Waiting for a free slot: it starts when the run before it ends."
    if run.state == "running":
        epoch = f"epoch {run.epoch} of {run.epochs}" if run.epoch else "starting up"
        left = f", about {format_seconds(run.eta_s)} left" if run.eta_s else ""
        return f"Training: {epoch}{left}."
    if run.state == "succeeded":
        return f"Finished in {format_seconds(run.duration_s())}. The model is {run.card_id}."
    return f"{STATE_WORDS[run.state].split(' ', 1)[1].capitalize()}: {run.message}" if run.message else run.state


def log_lines(run: RunInfo, count: int = 15) -> list[str]:
    """The last lines of the run's log; a failed run also shows the end of its process output."""
    lines = tail(run.dir / TRAIN_LOG, count)
    if run.state == "failed" or not lines:
        lines += tail(run.dir / OUTPUT_LOG, count)
    return lines
