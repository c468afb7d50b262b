"""Face detection over a stream of frames: each frame is let go as soon as its faces are cut.

:func:`core.engine.faces.find_faces` and :func:`~core.engine.faces.detect_boxes` are built on
:class:`FaceScan`. Frames arrive one at a time (from the decoding thread); every DETECT_BATCH
same-size frames go through MTCNN's first pass together, exactly the batches the whole-clip
version made, so the boxes are the same. A frame with a face has its crops cut (and resized to the
models' inputs) there and then, and its pixels are dropped. A frame without one keeps only the
small downscaled copies the retry passes start from (at most detect_max_side on a side: 0.4-0.7 MB
each), plus its full pixels while all such frames together stay under MISSED_FRAMES_BYTES; past
that, a frame in which a retry finds a face is decoded again (``reread``) to cut its crop.

So at most DETECT_BATCH frames wait here at full resolution, plus the missed ones under the budget:
for a 3840x2160 clip (25 MB a frame) 8 x 25 MB + 256 MB, whatever the number of frames sampled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.engine import faces as f
from core.engine.tracking import assign_tracks
from core.settings import Settings
from core.types import Box, Face, FaceCrop, Frame, Track

# Full frames kept for frames the first pass missed, when they can be decoded again: 41 frames of
# 1080p, 10 of 4K. Most clips miss a few frames at most, which then need no second decoding.
MISSED_FRAMES_BYTES = 256 * 2**20

Detections = list[tuple[Box, float]]


@dataclass
class _Missed:
    """A frame the first pass found no face in: what the retries and its crops need."""

    index: int
    shape: tuple[int, ...]
    shrunk: dict[float, f._Shrunk]  # padding -> downscaled copy
    image: np.ndarray | None  # the full frame, when kept (see MISSED_FRAMES_BYTES)


@dataclass
class _Cut:
    """One face's crops: the one kept in the report and the models' inputs."""

    kept: np.ndarray
    inputs: dict[int, np.ndarray]


@dataclass(frozen=True)
class ScanResult:
    """``boxes``: per frame, its faces most confident first; ``faces``: the FaceResult."""

    boxes: list[Detections]
    faces: f.FaceResult


@dataclass
class FaceScan:
    """Feed frames in time order with :meth:`add`, then call :meth:`finish` once."""

    settings: Settings
    input_sizes: Sequence[int] = ()
    keep_side: int | None = None
    reread: Callable[[list[int]], Iterable[Frame]] | None = None
    _meta: list[tuple[int, float]] = field(default_factory=list)
    _found: dict[int, Detections] = field(default_factory=dict)
    _cuts: dict[int, list[_Cut]] = field(default_factory=dict)
    _waiting: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = field(default_factory=dict)
    _missed: dict[int, _Missed] = field(default_factory=dict)
    _missed_bytes: int = 0
    _detect_s: float = 0.0
    _crop_s: float = 0.0

    def add(self, frame: Frame) -> None:
        """Take the next frame; runs MTCNN once DETECT_BATCH frames of its size wait."""
        f._check_image(frame.image)
        position = len(self._meta)
        self._meta.append((int(frame.index), float(frame.time_s)))
        # Same-size frames only go together: MTCNN stacks a batch into one tensor, and mixing
        # sizes would also hit mtcnn 1.0's padding-offset bug.
        batch = self._waiting.setdefault(frame.image.shape, [])
        batch.append((position, frame.image))
        if len(batch) == f.DETECT_BATCH:
            self._first_pass(self._waiting.pop(frame.image.shape))

    def finish(self) -> ScanResult:
        """Run the rest: the last batches, the retries on missed frames, tracking, the result."""
        for shape in list(self._waiting):
            self._first_pass(self._waiting.pop(shape))
        started = time.perf_counter()
        missed = sorted(self._missed)
        # Retry only when at least half the frames had a face: then a frame without one is most
        # likely a miss, and the retries cost at most 1.5 extra passes.
        if 2 * len(missed) <= len(self._meta):
            for pad, angle in f.RETRY_PASSES:
                missed = self._retry(missed, self._pad(pad), angle)
        # Not held to the half rule: in dark footage most frames are misses, the very case it is for.
        self._retry(missed, self.settings.detect_pad, 0.0, equalise=True)
        self._detect_s += time.perf_counter() - started
        self._cut_retried()
        boxes = [sorted(self._found.get(p, []), key=lambda item: -item[1]) for p in range(len(self._meta))]
        return ScanResult(boxes, self._result(boxes))

    def _pad(self, pad: float | None) -> float:
        return self.settings.detect_pad if pad is None else pad

    def _first_pass(self, batch: list[tuple[int, np.ndarray]]) -> None:
        started = time.perf_counter()
        pad, max_side = self.settings.detect_pad, self.settings.detect_max_side
        shrunk = [f._shrink_for(image, pad, max_side) for _, image in batch]
        found = f.detect_batch([f._finish(s) for s in shrunk], batch[0][1].shape, self.settings)
        for (position, image), small, faces in zip(batch, shrunk, found):
            if faces:
                self._found[position] = faces
            else:
                self._keep_missed(position, image, small)
        self._detect_s += time.perf_counter() - started
        for (position, image), faces in zip(batch, found):
            if faces:
                self._cut(position, image)

    def _keep_missed(self, position: int, image: np.ndarray, padded: f._Shrunk) -> None:
        """Keep what the retries start from: a downscaled copy per padding they use."""
        max_side = self.settings.detect_max_side
        shrunk = {self.settings.detect_pad: padded}
        for pad, _ in f.RETRY_PASSES:
            pad = self._pad(pad)
            if pad not in shrunk:
                shrunk[pad] = f._shrink_for(image, pad, max_side)
        keep = self.reread is None or self._missed_bytes + image.nbytes <= MISSED_FRAMES_BYTES
        if keep:
            self._missed_bytes += image.nbytes
        self._missed[position] = _Missed(self._meta[position][0], image.shape, shrunk, image if keep else None)

    def _retry(self, missed: list[int], pad: float, angle: float, equalise: bool = False) -> list[int]:
        """One more pass over the missed frames, in the first pass's batching; those still missed."""
        if not missed:
            return missed
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for position in missed:
            by_shape.setdefault(self._missed[position].shape, []).append(position)
        for shape, members in by_shape.items():
            for start in range(0, len(members), f.DETECT_BATCH):
                chunk = members[start : start + f.DETECT_BATCH]
                prepared = [f._finish(self._missed[p].shrunk[pad], angle, equalise) for p in chunk]
                for position, faces in zip(chunk, f.detect_batch(prepared, shape, self.settings)):
                    if faces:
                        self._found[position] = faces
        return [p for p in missed if p not in self._found]

    def _cut_retried(self) -> None:
        """Crops of faces the retries found: from the kept frame, or from the frame decoded again."""
        found = [p for p in sorted(self._missed) if p in self._found]
        for position in [p for p in found if self._missed[p].image is not None]:
            self._cut(position, self._missed[position].image)
        again = {self._missed[p].index: p for p in found if self._missed[p].image is None}
        if again:
            for frame in self.reread(sorted(again)):
                if frame.index in again:
                    self._cut(again.pop(frame.index), frame.image)
        if again:
            raise RuntimeError(f"frames {sorted(again)} could not be decoded a second time")
        self._missed.clear()

    def _cut(self, position: int, image: np.ndarray) -> None:
        started = time.perf_counter()
        faces = sorted(self._found[position], key=lambda item: -item[1])
        self._cuts[position] = [self._cut_one(image, box) for box, _ in faces]
        self._crop_s += time.perf_counter() - started

    def _cut_one(self, image: np.ndarray, box: Box) -> _Cut:
        native = f.crop_square(image, box, self.settings.crop_margin)
        if not self.input_sizes and (self.keep_side is None or max(native.shape[:2]) <= self.keep_side):
            return _Cut(native, {})
        from models.detector import resize_crop  # Keras is loaded by now (MTCNN ran); not at import

        inputs = {size: resize_crop(native, size) for size in self.input_sizes}
        kept = native
        if self.keep_side is not None and max(native.shape[:2]) > self.keep_side:
            kept = np.ascontiguousarray(resize_crop(native, self.keep_side))
        return _Cut(kept, inputs)

    def _result(self, boxes: list[Detections]) -> f.FaceResult:
        started = time.perf_counter()
        track_ids = assign_tracks([[box for box, _ in found] for found in boxes])
        faces: list[Face] = []
        cuts: list[_Cut] = []
        for (index, time_s), found, ids, position in zip(self._meta, boxes, track_ids, range(len(boxes))):
            for (box, confidence), track_id, cut in sorted(
                zip(found, ids, self._cuts.get(position, [])), key=lambda item: item[1]
            ):
                faces.append(Face(index, time_s, box, confidence, int(track_id)))
                cuts.append(cut)
        n_tracks = 1 + max((face.track_id for face in faces), default=-1)
        tracks = tuple(Track(t, tuple(face for face in faces if face.track_id == t)) for t in range(n_tracks))
        self._detect_s += time.perf_counter() - started
        return f.FaceResult(
            faces=tuple(faces),
            tracks=tracks,
            crops=tuple(FaceCrop(face, cut.kept) for face, cut in zip(faces, cuts)),
            detect_s=self._detect_s,
            crop_s=self._crop_s,
            inputs={size: tuple(cut.inputs[size] for cut in cuts) for size in self.input_sizes},
            frames=tuple(self._meta),
        )
