"""From a clip file to a ClipReport: sample frames, find faces, score every crop, aggregate, decide.

Frames are decoded in a background thread while MTCNN works on those already read, and each is
let go once its faces are cut (bounded memory, see :mod:`core.engine.face_scan`).
Each selected model sees a clip's crops in batched ``predict`` calls of SCORE_BATCH (one for the
default 32 frames; speed, and bounded memory for longer samples), its
per-crop p_fake is aggregated per track (person), and the most suspicious track with enough frames
decides the clip: a clip is fake if any person in it is. A model that cannot run (weights missing
or corrupt) is reported as UNAVAILABLE with its reason while the others still run; a clip with no
face gives NO_FACE and no score at all, never a made-up one.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import core
import models
from core.engine import faces, video
from core.engine.prefetch import Prefetched

# Aggregation and the verdict rules live in core.engine.verdicts; re-exported so callers keep importing
# them from here (core.engine.report, the tests).
from core.engine.verdicts import (
    AGGREGATIONS,
    MIN_TRACK_FRAMES,
    MIN_TRACK_SHARE,
    aggregate,
    check_aggregation,
    deciding_track,
    track_scores,
    verdict_for,
)
from core.errors import InvalidClipError, WeightsHashError, WeightsMissingError
from core.settings import Settings, get_settings
from core.types import ClipInfo, ClipReport, FaceCrop, FrameScore, ModelResult, Sampling, Timings, Verdict
from models.cards import CardError, ModelCard

if TYPE_CHECKING:  # models.detector imports Keras; analysis only calls .predict on what it gets
    from models.detector import Detector

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]

# Crops are kept in the report (gallery, heatmaps, zip) no larger than this side, the largest input
# of any shipped card: 128 crops of a 4K close-up at native size would be 1.5 GB per report, at
# this size at most 25 MB. The models score the native crops (resized straight to their input).
KEEP_CROP_SIDE = 256

# Crops per forward pass. One pass over a 128-frame clip's crops held MesoInception4's activations
# for all 128 at 256 px at once (the peak of a 4K analysis: 2.4 GB of RSS); 32 is the default
# frame count, so a default analysis still makes one pass per model and its scores are unchanged.
# A longer one makes several: Keras gives the same scores to within 1e-6 whatever the batch split.
SCORE_BATCH = 32

# Share of the progress bar given to each stage (reading and faces take most of a warm run).
_PROGRESS_READ, _PROGRESS_FACES, _PROGRESS_MODELS = 0.0, 0.3, 0.6


@dataclass(frozen=True)
class LoadedModel:
    """A selected model card with its loaded detector, or the reason it could not be loaded."""

    card: ModelCard
    detector: Detector | None  # None when the model is unavailable (see ``error``)
    error: str | None = None
    random_weights: bool = False  # set only by ``bench --random-weights`` (timing, never verdicts)


def load_models(model_ids: Sequence[str] | None = None, settings: Settings | None = None) -> list[LoadedModel]:
    """Resolve model ids and load each detector once (models caches them per process).

    Args:
        model_ids: card ids; None selects ``models.default_model_ids()``.
        settings: paths and limits; defaults to ``get_settings()``.

    Returns:
        One LoadedModel per id, in order; a model whose weights are missing, fail their hash check
        or do not fit its architecture carries the error's message instead of a detector.

    Raises:
        UnknownModelError: an id is not in the registry (the caller's mistake, not the model's).
    """
    settings = settings or get_settings()
    ids = _resolve_ids(model_ids, settings)
    return [_load_one(model_id, settings) for model_id in ids]


def _resolve_ids(model_ids: Sequence[str] | None, settings: Settings) -> list[str]:
    ids = list(model_ids) if model_ids is not None else list(models.default_model_ids(settings))
    for model_id in ids:
        models.get_card(model_id, settings)  # an unknown id fails now, before any slow work
    return ids


def _load_one(model_id: str, settings: Settings) -> LoadedModel:
    card = models.get_card(model_id, settings)
    try:
        return LoadedModel(card, models.load_model(card.id, settings))
    except (WeightsMissingError, WeightsHashError, CardError) as exc:
        # CardError here: a weight file that does not fit its card's architecture.
        log.info("%s is unavailable: %s", card.id, exc.message)
        return LoadedModel(card, None, exc.message)


def analyze(
    clip: str | Path,
    model_ids: Sequence[str] | None = None,
    frames: int = 32,
    settings: Settings | None = None,
    progress: Progress | None = None,
    aggregation: str = "mean",
) -> ClipReport:
    """Analyse one clip with the selected models.

    Args:
        clip: path of the video file.
        model_ids: card ids to run; None runs ``models.default_model_ids()`` (one per family).
        frames: number of evenly spaced frames to sample.
        settings: paths and limits; defaults to ``get_settings()``.
        progress: optional ``callable(stage, fraction)``; stages "reading", "faces",
            "model:<id>", "done"; fraction is the overall progress in [0, 1].
        aggregation: how a track's per-frame scores combine: "mean", "median" or "max".

    Returns:
        The ClipReport (status "ok" or "no_faces").

    Raises:
        InvalidClipError: the file is not a readable clip or is outside the limits.
        UnknownModelError: a model id is not in the registry.
        ValueError: frames out of range or unknown aggregation.
    """
    settings = settings or get_settings()
    _check_options(frames, aggregation, settings)
    ids = _resolve_ids(model_ids, settings)
    # Each model loads only when its turn comes, after the clip has been read: a bad file is
    # refused without building any model, and progress shows which model is loading.
    pending = [(models.get_card(i, settings), functools.partial(_load_one, i, settings)) for i in ids]
    return _analyze(clip, pending, frames, settings, progress, aggregation)


def analyze_loaded(
    clip: str | Path,
    loaded: Sequence[LoadedModel],
    frames: int = 32,
    settings: Settings | None = None,
    progress: Progress | None = None,
    aggregation: str = "mean",
) -> ClipReport:
    """Like :func:`analyze`, with models already loaded by :func:`load_models` (or by ``bench``)."""
    settings = settings or get_settings()
    _check_options(frames, aggregation, settings)
    pending = [(item.card, lambda item=item: item) for item in loaded]
    return _analyze(clip, pending, frames, settings, progress, aggregation)


def _analyze(
    clip: str | Path,
    pending: Sequence[tuple[ModelCard, Callable[[], LoadedModel]]],
    frames: int,
    settings: Settings,
    progress: Progress | None,
    aggregation: str,
) -> ClipReport:
    report_progress = progress or (lambda stage, fraction: None)
    start = time.perf_counter()

    report_progress("reading", _PROGRESS_READ)
    info = video.probe(clip, settings)
    probe_s = time.perf_counter() - start
    sizes = sorted({card.input_size for card, _ in pending})
    found, decode_s = _find_faces(clip, info, frames, sizes, settings, report_progress)
    if not found.frames:
        raise InvalidClipError(f"{info.name} is truncated or damaged: no frames could be decoded")

    results, classify_s = [], {}
    for i, (card, get_model) in enumerate(pending):
        report_progress(f"model:{card.id}", _PROGRESS_MODELS + (1 - _PROGRESS_MODELS) * i / len(pending))
        result = _run_model(get_model(), found.crops, found.inputs.get(card.input_size, ()), aggregation)
        results.append(result)
        classify_s[card.id] = result.seconds

    timings = Timings(
        decode_s=probe_s + decode_s,
        detect_s=float(found.detect_s),
        crop_s=float(found.crop_s),
        classify_s=classify_s,
        total_s=time.perf_counter() - start,
    )
    report_progress("done", 1.0)
    return ClipReport(
        status="ok" if found.faces else "no_faces",
        clip=info,
        sampling=Sampling(
            requested=int(frames),
            frame_indices=tuple(index for index, _ in found.frames),
            times_s=tuple(time_s for _, time_s in found.frames),
        ),
        faces=tuple(found.faces),
        models=tuple(results),
        timings=timings,
        versions=versions(),
        crops=tuple(found.crops),
        tracks=tuple(found.tracks),
    )


def _find_faces(
    clip: str | Path, info: ClipInfo, frames: int, sizes: Sequence[int], settings: Settings, report_progress: Progress
) -> tuple[faces.FaceResult, float]:
    """Decode in a background thread while MTCNN works on the frames already read.

    The decoder runs at most one detection batch ahead (the queue's depth), so the frames held at
    full resolution stay bounded (see :mod:`core.engine.face_scan`). Returns the faces and the
    seconds the decoding thread spent decoding (overlapped with detection, so not on the wall).
    """

    def reread(indices: list[int]):
        return video.iter_sampled(clip, frames, info, settings, only=indices)

    decoding = video.iter_sampled(clip, frames, info, settings)
    report_progress("faces", _PROGRESS_FACES)
    with Prefetched(decoding, depth=faces.DETECT_BATCH, name="dfi-decode") as decoded:
        found = faces.find_faces(decoded, settings, input_sizes=sizes, keep_side=KEEP_CROP_SIDE, reread=reread)
    return found, decoded.busy_s


def _check_options(frames: int, aggregation: str, settings: Settings) -> None:
    check_aggregation(aggregation)
    if not 1 <= int(frames) <= settings.max_frames:
        raise ValueError(f"frames must be between 1 and {settings.max_frames}, not {frames}")


def _run_model(
    item: LoadedModel, crops: Sequence[FaceCrop], inputs: Sequence[np.ndarray], aggregation: str
) -> ModelResult:
    """Score all crops with one model in batched calls of SCORE_BATCH, then aggregate and decide.

    ``inputs`` are the crops resized to the card's input side from the native crop (``crops``
    may be kept smaller than native, see KEEP_CROP_SIDE), so the scores are those of the native crops.
    """
    card = item.card
    base = dict(
        id=card.id,
        family=card.family,
        display_name=card.display_name,
        threshold=float(card.threshold),
        band=(float(card.band[0]), float(card.band[1])),
        aggregation=aggregation,
    )
    if item.detector is None:
        return ModelResult(**base, p_fake=None, verdict=Verdict.UNAVAILABLE, seconds=0.0, message=item.error)
    if not crops:
        return ModelResult(**base, p_fake=None, verdict=Verdict.NO_FACE, seconds=0.0)

    t0 = time.perf_counter()
    chunks = [list(inputs[i : i + SCORE_BATCH]) for i in range(0, len(inputs), SCORE_BATCH)]
    raw = np.concatenate([np.asarray(item.detector.predict(c), dtype=np.float64).reshape(-1) for c in chunks])
    seconds = time.perf_counter() - t0
    if raw.shape != (len(crops),) or not np.all(np.isfinite(raw)) or raw.min() < 0 or raw.max() > 1:
        # A broken checkpoint (e.g. a diverged training run) must not produce a verdict.
        log.error("%s returned invalid scores (shape %s)", card.id, raw.shape)
        return ModelResult(
            **base,
            p_fake=None,
            verdict=Verdict.UNAVAILABLE,
            seconds=seconds,
            message=f"{card.id} returned invalid scores (not {len(crops)} probabilities in [0, 1])",
        )

    scores = tuple(
        FrameScore(int(c.face.frame_index), float(c.face.time_s), int(c.face.track_id), float(p))
        for c, p in zip(crops, raw)
    )
    per_track = track_scores(scores, aggregation)
    decider = deciding_track(per_track)
    p_clip = per_track[decider][0]
    return ModelResult(
        **base,
        p_fake=p_clip,
        verdict=verdict_for(p_clip, card.band),
        seconds=seconds,
        frames=scores,
        track_p_fake={t: v[0] for t, v in per_track.items()},
        deciding_track=decider,
    )


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions of this package, Python and the libraries that shape the scores."""
    out = {"dfi": core.__version__, "python": platform.python_version()}
    for key, dist in (
        ("tensorflow", "tensorflow"),
        ("keras", "keras"),
        ("mtcnn", "mtcnn"),
        ("opencv", "opencv-python-headless"),
        ("numpy", "numpy"),
    ):
        try:
            out[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[key] = "not installed"
    return out


__all__ = [
    "AGGREGATIONS",
    "MIN_TRACK_FRAMES",
    "MIN_TRACK_SHARE",
    "LoadedModel",
    "aggregate",
    "analyze",
    "analyze_loaded",
    "deciding_track",
    "load_models",
    "track_scores",
    "verdict_for",
    "versions",
]
