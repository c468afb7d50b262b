"""The files a training run writes, and the Keras callback that keeps them current.

A run folder is the whole interface between a training process and whoever watches it (the
training page, ``core/jobs/service.py``, a person with ``cat``):

- ``spec.json``: what was asked; ``status.json``: state (queued, running, succeeded, failed,
  cancelled), phase, epoch, step, eta_s, updated, message; ``metrics.jsonl``: one line per epoch;
  ``train.log``: a human log; ``best.weights.h5``: the best checkpoint so far.
- Cancelling: create a file named ``cancel`` in the run folder (or send SIGTERM); the run stops
  after the current batch and ends as ``cancelled``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from pathlib import Path

import keras

from core.files import locked, now_iso, update_json, write_json_atomic

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
STATUS_EVERY_S = 2.0  # status.json is rewritten at most this often during an epoch


class RunFiles:
    """Paths and writers of one run folder."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.spec = self.dir / "spec.json"
        self.status_path = self.dir / "status.json"
        self.metrics = self.dir / "metrics.jsonl"
        self.log_path = self.dir / "train.log"
        self.best = self.dir / "best.weights.h5"
        self.cancel_file = self.dir / "cancel"
        self.status: dict = {}
        self._signalled = threading.Event()

    def set_status(self, fresh: bool = False, **fields) -> None:
        """Merge ``fields`` into status.json (with ``updated``) under its lock.

        Merged into the file, not a private copy written back whole: the job runners write this
        file too (a cancel before start, a crash recorded by the watcher). ``fresh`` (the run's
        first write) starts from nothing instead, so a reused folder keeps no earlier run's fields.
        """
        if "state" in fields and fields["state"] not in STATES:
            raise ValueError(f"unknown state {fields['state']!r}")
        fields.update(updated=now_iso(), pid=os.getpid())
        if fresh:
            with locked(self.status_path):
                write_json_atomic(self.status_path, fields)
            self.status = fields
        else:
            self.status = update_json(self.status_path, **fields)

    def log(self, message: str) -> None:
        """Append one timestamped line to train.log."""
        with self.log_path.open("a", encoding="utf-8") as handle:
            handle.write(f"{now_iso()} {message}\n")

    def append_metrics(self, row: dict) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        with self.metrics.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(clean) + "\n")

    def cancel_requested(self) -> bool:
        return self._signalled.is_set() or self.cancel_file.exists()

    def install_sigterm(self) -> None:
        """Turn SIGTERM into a clean cancel (only possible from the main thread)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self._signalled.set())


class RunCallback(keras.callbacks.Callback):
    """Writes status and per-epoch metrics, keeps the best checkpoint, and honours cancel requests.

    Args:
        files: the run's files.
        net: the registry architecture model whose weights are saved (the model being fitted
            may wrap it, e.g. with a float32 output cast under mixed precision).
        monitor: the logged metric deciding "best" (``val_auc``, ``val_loss`` or ``loss``).
        mode: "max" or "min".
        epochs: total epochs of the run (all phases), for the ETA.
        steps: training batches per epoch.
        batch_size: crops per batch (for crops/s).
        phase: 1 or 2 (Xception fine-tuning), recorded with each epoch.
        best: the best value so far (carried from a previous phase).
        undefined: logged metrics to record as null (e.g. ``val_auc`` on a one-class validation
            set, where Keras reports 0 for a value that does not exist).
    """

    def __init__(
        self,
        files: RunFiles,
        net: keras.Model,
        monitor: str,
        mode: str,
        epochs: int,
        steps: int,
        batch_size: int,
        phase: int = 1,
        best: float | None = None,
        undefined: tuple[str, ...] = (),
    ):
        super().__init__()
        self.files, self.net, self.monitor, self.mode = files, net, monitor, mode
        self.epochs, self.steps, self.batch_size, self.phase = epochs, steps, batch_size, phase
        self.best, self.undefined = best, undefined
        self.best_epoch: int | None = None
        self.cancelled = False
        self._epoch = 0
        self._epoch_start = self._last_write = time.monotonic()
        self._run_start = time.monotonic()
        self._done_steps = 0

    def _improved(self, value: float | None) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_start = time.monotonic()
        self.files.set_status(
            state="running", phase=self.phase, epoch=epoch + 1, epochs=self.epochs, step=0, steps=self.steps
        )

    def on_train_batch_end(self, batch, logs=None):
        self._done_steps += 1
        if self.files.cancel_requested():
            self.cancelled = True
            self.model.stop_training = True
        now = time.monotonic()
        if now - self._last_write >= STATUS_EVERY_S or batch + 1 == self.steps:
            per_step = (now - self._run_start) / self._done_steps
            remaining = (self.epochs - self._epoch - 1) * self.steps + (self.steps - batch - 1)
            self.files.set_status(step=batch + 1, eta_s=round(per_step * remaining, 1))
            self._last_write = now

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        seconds = time.monotonic() - self._epoch_start
        value = logs.get(self.monitor)
        row = {
            "epoch": epoch + 1,
            "phase": self.phase,
            "seconds": round(seconds, 2),
            "crops_per_s": round(self.steps * self.batch_size / max(seconds, 1e-9), 2),
        }
        row.update(
            {k: (None if k in self.undefined else float(v)) for k, v in logs.items() if isinstance(v, (int, float))}
        )
        lr = getattr(self.model.optimizer, "learning_rate", None)
        try:
            row["lr"] = float(keras.ops.convert_to_numpy(lr))
        except (TypeError, ValueError):
            pass
        if self._improved(None if value is None else float(value)):
            self.best, self.best_epoch = float(value), epoch + 1
            self.net.save_weights(str(self.files.best))
            row["best"] = True
        self.files.append_metrics(row)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float) and k != "seconds")
        self.files.log(f"epoch {epoch + 1}/{self.epochs} (phase {self.phase}): {shown}")
        if self.files.cancel_requested():
            self.cancelled = True
            self.model.stop_training = True


def hardware_note(n_gpus: int) -> str:
    import keras

    where = f"{n_gpus} GPU(s)" if n_gpus else f"CPU ({os.cpu_count()} cores)"
    return f"{where}, Keras {keras.__version__} on {keras.backend.backend()}"
