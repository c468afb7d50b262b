"""Train a registry architecture on a face-crop dataset: ``python -m core train``.

One call of :func:`run_training` is one run: it writes the run folder (see
:mod:`core.training.runtime`), fits the model (Xception in two phases when it starts from pretrained
weights), keeps the best checkpoint by validation AUC, and on success writes the weight file and
a model card ``<arch>.<tag>`` where the registry finds them, then checks that the registry loads
the card and reproduces the trained model's scores.
"""

from __future__ import annotations

import dataclasses
import json
import traceback
from datetime import datetime
from pathlib import Path

from core.errors import DFIError
from core.files import now_iso
from core.settings import Settings, get_settings
from core.training.runtime import RunFiles
from core.training.spec import TrainSpec, resolve
from core.training.trained_card import TrainResult


def default_run_dir(spec: TrainSpec, settings: Settings) -> Path:
    return settings.runs_root / f"{spec.arch}.{spec.tag}-{datetime.now():%Y%m%d-%H%M%S}"


def run_training(spec: TrainSpec, settings: Settings | None = None, verbose: int = 0) -> TrainResult:
    """Run one training job to its end (succeeded, failed or cancelled).

    Args:
        spec: the run's choices; family defaults are filled in by :func:`core.training.spec.resolve`.
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
    files.set_status(fresh=True, state="queued", started=now_iso(), message="")
    files.install_sigterm()
    try:
        from core.training.loop import fit_run  # imports Keras and the backend

        return fit_run(spec, files, settings, verbose)
    except DFIError as exc:
        files.set_status(state="failed", message=exc.message)
        files.log(f"failed: {exc.message}")
        raise
    except Exception as exc:
        files.log("failed:\n" + traceback.format_exc())
        files.set_status(state="failed", message=f"{type(exc).__name__}: {exc}".splitlines()[0])
        raise
