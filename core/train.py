"""Train a registry architecture on a face-crop dataset: ``python -m core train``.

One call of :func:`run_training` is one run: it writes the run folder (see
:mod:`core.train_runtime`), fits the model (Xception in two phases when it starts from pretrained
weights), keeps the best checkpoint by validation AUC, and on success writes the weight file and
a model card ``<arch>.<tag>`` where the registry finds them, then checks that the registry loads
the card and reproduces the trained model's scores.
"""

from __future__ import annotations

import dataclasses
import json
import os
import traceback
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core.datasets import read_manifest
from core.errors import DFIError
from core.settings import Settings, get_settings
from core.train_spec import TrainSpec, resolve
from core.train_models import TrainError
from core.runs import now_iso
from core.train_runtime import RunFiles

# The registry must reproduce the trained model's scores within this (float16 storage included).
RELOAD_TOLERANCE = 0.02


@dataclass(frozen=True)
class TrainResult:
    """How a run ended. ``card_id``/``card_path``/``weights_path`` are set when it succeeded."""

    state: str
    run_dir: Path
    card_id: str | None = None
    card_path: Path | None = None
    weights_path: Path | None = None
    best_epoch: int | None = None
    monitor: str | None = None
    best_value: float | None = None


def default_run_dir(spec: TrainSpec, settings: Settings) -> Path:
    return settings.runs_root / f"{spec.arch}.{spec.tag}-{datetime.now():%Y%m%d-%H%M%S}"


def select_rows(rows: list[dict], spec: TrainSpec) -> tuple[list[dict], list[dict]]:
    """(train rows, validation rows) of the manifest, by split name.

    Raises:
        TrainError: no training crops, or training data lacking a class it needs.
    """
    splits = sorted({r["split"] for r in rows})
    train_splits = spec.train_splits or [s for s in splits if s not in (spec.val_split, "test")]
    unknown = [s for s in train_splits + ([spec.val_split] if spec.val_split else []) if s not in splits]
    if unknown and spec.train_splits:
        raise TrainError(f"split(s) {', '.join(unknown)} not in {spec.data} (it has {', '.join(splits)})")
    excluded = set(spec.exclude_collections or ())
    train = [r for r in rows if r["split"] in train_splits and r["collection"] not in excluded]
    val = [r for r in rows if spec.val_split and r["split"] == spec.val_split
           and r["collection"] not in excluded]
    labels = {r["label"] for r in train}
    needed = {0} if spec.pseudo_fakes == "only" else {0, 1}
    if not train or not needed <= labels:
        what = "real crops" if needed == {0} else "both real and fake crops"
        raise TrainError(f"training needs {what} in split(s) {', '.join(train_splits) or '(none)'} of {spec.data}")
    return train, val


def check_destination(card_id: str, weights_dir: Path, settings: Settings) -> None:
    """Refuse a run whose weight file would be shadowed by a same-named file searched earlier."""
    name = f"{card_id}.weights.h5"
    for folder in settings.weights_search_path():
        if folder.resolve() == weights_dir.resolve():
            return
        if (folder / name).exists():
            raise TrainError(f"{folder / name} already exists and the registry would load it instead "
                             f"of this run's weights; choose another --tag")


def run_training(spec: TrainSpec, settings: Settings | None = None, verbose: int = 0) -> TrainResult:
    """Run one training job to its end (succeeded, failed or cancelled).

    Args:
        spec: the run's choices; family defaults are filled in by :func:`core.train_spec.resolve`.
        settings: paths (runs, cards, weights); defaults to get_settings().
        verbose: Keras fit verbosity (0 silent, 1 progress bar, 2 one line per epoch).

    Returns:
        A TrainResult; a cancelled run returns normally with state "cancelled".

    Raises:
        TrainError / DFIError: a bad spec, dataset or init (status.json says "failed" when the
            run folder was already made).
    """
    settings = settings or get_settings()
    spec = resolve(spec)
    run_dir = Path(spec.out).expanduser() if spec.out else default_run_dir(spec, settings)
    spec = dataclasses.replace(spec, out=str(run_dir))
    files = RunFiles(run_dir)
    files.spec.write_text(json.dumps(spec.to_dict(), indent=2) + "\n", encoding="utf-8")
    files.set_status(state="queued", started=now_iso(), message="")
    files.install_sigterm()
    try:
        from core.train_loop import fit_run  # imports Keras and the backend

        return fit_run(spec, files, settings, verbose)
    except DFIError as exc:
        files.set_status(state="failed", message=exc.message)
        files.log(f"failed: {exc.message}")
        raise
    except Exception as exc:
        files.log("failed:\n" + traceback.format_exc())
        files.set_status(state="failed", message=f"{type(exc).__name__}: {exc}".splitlines()[0])
        raise


def hardware_note(n_gpus: int) -> str:
    import keras

    where = f"{n_gpus} GPU(s)" if n_gpus else f"CPU ({os.cpu_count()} cores)"
    return f"{where}, Keras {keras.__version__} on {keras.backend.backend()}"


def load_rows(spec: TrainSpec) -> tuple[list[dict], list[dict]]:
    """Read the dataset manifest and split it for this spec."""
    return select_rows(read_manifest(Path(spec.data).expanduser()), spec)
