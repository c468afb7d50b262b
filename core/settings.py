"""One place for paths and limits.

Every value can be overridden by an environment variable ``DFI_<NAME>``; nothing here touches the
disk or the network at import time, so importing is free and tests can change the environment and
call :func:`get_settings` again. Every number has a range (``_limits``): a value outside it, such as
``DFI_MAX_UPLOAD_MB=-1``, is refused with one plain line instead of breaking something later.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = PROJECT_ROOT / "samples"  # the shipped sample clips (the app's "Try a sample", bench)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
# The name Keras caches its ImageNet Xception (no top) weights under.
IMAGENET_XCEPTION_FILE = "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"


def keras_imagenet_cache_file() -> Path:
    """Where Keras caches the ImageNet Xception file: ``$KERAS_HOME/models``, else ~/.keras/models."""
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()
    return home / "models" / IMAGENET_XCEPTION_FILE


@dataclass(frozen=True)
class Settings:
    """Paths and limits for one process. Build it with :func:`get_settings`."""

    # Where weights are searched, in this order (docs/ARCHITECTURE.md): weights_dir (if set), then
    # models/weights/, then the user cache.
    weights_dir: Path | None = None
    project_weights_dir: Path = PROJECT_ROOT / "models" / "weights"
    cache_dir: Path = Path.home() / ".cache" / "deepfake-inspector"
    # Extra model cards (trained or added by the user) live here, beside the shipped ones.
    user_cards_dir: Path = Path.home() / ".cache" / "deepfake-inspector" / "cards"
    # The folder the Compare, Train and Scan pages may read labelled clips from (a person's own
    # folder, created on first use; nothing outside it is offered or accepted).
    data_root: Path = Path.home() / "deepfake-inspector-data"
    runs_root: Path = Path.home() / ".cache" / "deepfake-inspector" / "runs"
    # The Ray cluster the Train, Compare and Scan pages submit to ("" = none; a visitor can never
    # name another; only the command line can): the dashboard's HTTP address, e.g. http://127.0.0.1:8265.
    ray_address: str = ""
    # Xception's ImageNet starting weights; None = the Keras cache file (keras_imagenet_cache_file).
    imagenet_weights: Path | None = None

    # Upload and clip limits: a clip outside them is refused with InvalidClipError.
    max_upload_mb: int = 200
    max_duration_s: float = 600.0
    max_side_px: int = 4096
    min_frames: int = 2
    # Own weights added on the Models page (an Xception file is ~85 MB; MesoNet ~0.2 MB).
    max_weights_upload_mb: int = 300

    # Sampling and face finding.
    default_frames: int = 32
    max_frames: int = 128
    detect_max_side: int = 640  # MTCNN runs on a copy no larger than this (speed)
    detect_pad: float = 0.25  # pad the frame before detection so frame-filling faces are found
    face_confidence: float = 0.90
    crop_margin: float = 1.3

    def ensure_data_root(self) -> Path:
        """The data root, created (empty) the first time a page needs it; returns it."""
        self.data_root.mkdir(parents=True, exist_ok=True)
        return self.data_root

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    def weights_search_path(self) -> list[Path]:
        """Folders searched for weight files, first match wins."""
        dirs = [self.weights_dir] if self.weights_dir else []
        return dirs + [self.project_weights_dir, self.cache_dir / "weights"]

    def imagenet_weights_file(self) -> Path:
        """The one place init "imagenet" reads (and its download writes): ``imagenet_weights`` when
        set, else the file in the Keras cache. Says where it should be; does not check it exists."""
        return self.imagenet_weights or keras_imagenet_cache_file()


# Inclusive ranges of every number a person can set; the upper ends are far beyond sensible use and
# only stop a typo (an extra zero, a negative) from reaching the pipeline.
_LIMITS: dict[str, tuple[float, float]] = {
    "max_upload_mb": (1, 10_240),
    "max_duration_s": (1.0, 36_000.0),
    "max_side_px": (64, 16_384),
    "min_frames": (1, 1_024),
    "max_weights_upload_mb": (1, 4_096),
    "default_frames": (1, 1_024),
    "max_frames": (1, 1_024),
    "detect_max_side": (64, 8_192),
    "detect_pad": (0.0, 1.0),
    "face_confidence": (0.0, 1.0),
    "crop_margin": (1.0, 3.0),
}


def _coerce(field: dataclasses.Field, raw: str):
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    if "Path" in kind:
        return Path(raw).expanduser()
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    return raw


def _check_ranges(values: dict) -> None:
    """Refuse environment values outside their range (keyword overrides are the code's own)."""
    for name, (low, high) in _LIMITS.items():
        if name in values and not low <= values[name] <= high:
            raise ValueError(f"DFI_{name.upper()}={values[name]!r} is out of range: it must be from {low} to {high}")
    defaults = Settings()
    low, high = values.get("min_frames", defaults.min_frames), values.get("max_frames", defaults.max_frames)
    frames = values.get("default_frames", defaults.default_frames)
    if {"min_frames", "max_frames", "default_frames"} & values.keys() and not low <= frames <= high:
        raise ValueError(f"DFI_DEFAULT_FRAMES={frames} must lie between DFI_MIN_FRAMES={low} and DFI_MAX_FRAMES={high}")
    address = values.get("ray_address", "")
    if address and not address.startswith(("http://", "https://")):
        raise ValueError(f"DFI_RAY_ADDRESS={address!r} must be the cluster dashboard's http:// or https:// address")


def get_settings(**overrides) -> Settings:
    """Settings from defaults, then ``DFI_*`` environment variables, then keyword overrides.

    Raises:
        ValueError: an environment variable holds a value of the wrong type or out of its range.
    """
    values = {}
    for field in dataclasses.fields(Settings):
        raw = os.environ.get(f"DFI_{field.name.upper()}")
        if raw not in (None, ""):
            try:
                values[field.name] = _coerce(field, raw)
            except ValueError as exc:
                raise ValueError(f"DFI_{field.name.upper()}={raw!r} is not valid: {exc}") from None
    _check_ranges(values)
    if "cache_dir" in values:
        # Keep the cache-derived folders together unless they were set on their own.
        cache = values["cache_dir"]
        values.setdefault("user_cards_dir", cache / "cards")
        values.setdefault("runs_root", cache / "runs")
    values.update(overrides)
    return Settings(**values)
