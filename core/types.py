"""Frozen dataclasses that cross module boundaries.

Numbers in these are plain Python ``int``/``float`` (never numpy scalars), so ``to_dict()`` output
is JSON-ready. Image arrays (frames, crops) are carried alongside but never serialised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

REPORT_SCHEMA = "dfi.report/1"


class Verdict(str, Enum):
    """What one model says about one clip."""

    FAKE = "FAKE"
    REAL = "REAL"
    UNCERTAIN = "UNCERTAIN"
    NO_FACE = "NO_FACE"
    UNAVAILABLE = "UNAVAILABLE"  # the model could not run (weights missing, hash mismatch)


@dataclass(frozen=True)
class ClipInfo:
    """What the container says about a clip, after validation.

    ``width``/``height`` are of upright frames (rotation metadata already applied).
    """

    name: str
    sha256: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float
    rotation: int = 0  # degrees clockwise applied to make frames upright
    codec: str = ""

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "width": int(self.width),
            "height": int(self.height),
            "fps": float(self.fps),
            "frame_count": int(self.frame_count),
            "duration_s": float(self.duration_s),
        }


@dataclass(frozen=True, eq=False)
class Frame:
    """One sampled frame: upright RGB uint8 (H, W, 3), its index in the clip and its time."""

    index: int
    time_s: float
    image: np.ndarray


@dataclass(frozen=True)
class Box:
    """A face box in frame pixels: top-left corner, width, height."""

    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0.0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0

    def to_list(self) -> list[float]:
        return [round(float(v), 1) for v in (self.x, self.y, self.w, self.h)]


@dataclass(frozen=True)
class Face:
    """One detected face in one sampled frame, assigned to a track (person)."""

    frame_index: int
    time_s: float
    box: Box
    confidence: float
    track_id: int

    def to_dict(self) -> dict:
        return {
            "frame_index": int(self.frame_index),
            "time_s": float(self.time_s),
            "box": self.box.to_list(),
            "confidence": round(float(self.confidence), 4),
            "track_id": int(self.track_id),
        }


@dataclass(frozen=True, eq=False)
class FaceCrop:
    """The square RGB uint8 crop the models see for one face (native size; models resize)."""

    face: Face
    image: np.ndarray


@dataclass(frozen=True)
class Track:
    """One person across the sampled frames: their faces in time order."""

    track_id: int
    faces: tuple[Face, ...]


@dataclass(frozen=True)
class FrameScore:
    """One model's p_fake for one face crop."""

    frame_index: int
    time_s: float
    track_id: int
    p_fake: float

    def to_dict(self) -> dict:
        return {
            "frame_index": int(self.frame_index),
            "time_s": float(self.time_s),
            "track_id": int(self.track_id),
            "p_fake": round(float(self.p_fake), 6),
        }


@dataclass(frozen=True)
class ModelResult:
    """One model's verdict on one clip.

    ``p_fake`` is None exactly when there is no score to give (NO_FACE or UNAVAILABLE); ``message``
    then says why in plain words.
    """

    id: str
    family: str
    display_name: str
    p_fake: float | None
    verdict: Verdict
    threshold: float
    band: tuple[float, float]
    aggregation: str
    seconds: float
    frames: tuple[FrameScore, ...] = ()
    message: str | None = None
    track_p_fake: dict[int, float] = field(default_factory=dict)  # per-track aggregate
    deciding_track: int | None = None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "family": self.family,
            "display_name": self.display_name,
            "p_fake": None if self.p_fake is None else round(float(self.p_fake), 6),
            "verdict": self.verdict.value,
            "threshold": float(self.threshold),
            "band": [float(self.band[0]), float(self.band[1])],
            "aggregation": self.aggregation,
            "seconds": round(float(self.seconds), 4),
            "frames": [f.to_dict() for f in self.frames],
            "message": self.message,
        }


@dataclass(frozen=True)
class Sampling:
    requested: int
    frame_indices: tuple[int, ...]
    times_s: tuple[float, ...]

    def to_dict(self) -> dict:
        return {
            "requested": int(self.requested),
            "frame_indices": [int(i) for i in self.frame_indices],
            "times_s": [round(float(t), 4) for t in self.times_s],
        }


@dataclass(frozen=True)
class Timings:
    """Wall seconds per stage. ``classify_s`` holds one entry per model id."""

    decode_s: float = 0.0
    detect_s: float = 0.0
    crop_s: float = 0.0
    classify_s: dict[str, float] = field(default_factory=dict)
    total_s: float = 0.0

    def to_dict(self) -> dict:
        # The report contract (docs/ARCHITECTURE.md) has four keys; crop time is part of face finding there.
        return {
            "decode_s": round(self.decode_s, 4),
            "detect_s": round(self.detect_s + self.crop_s, 4),
            "classify_s": round(sum(self.classify_s.values()), 4),
            "total_s": round(self.total_s, 4),
        }


@dataclass(frozen=True, eq=False)
class ClipReport:
    """Everything the app, the command line and the exports need about one analysed clip."""

    status: str  # "ok" | "no_faces"
    clip: ClipInfo
    sampling: Sampling
    faces: tuple[Face, ...]
    models: tuple[ModelResult, ...]
    timings: Timings
    versions: dict[str, str]
    crops: tuple[FaceCrop, ...] = ()  # for the gallery and the annotated video; not serialised
    tracks: tuple[Track, ...] = ()

    def to_dict(self) -> dict:
        return {
            "schema": REPORT_SCHEMA,
            "status": self.status,
            "clip": self.clip.to_dict(),
            "sampling": self.sampling.to_dict(),
            "faces": [f.to_dict() for f in self.faces],
            "models": [m.to_dict() for m in self.models],
            "timings": self.timings.to_dict(),
            "versions": dict(self.versions),
        }
