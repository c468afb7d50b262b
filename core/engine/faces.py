"""Find faces in sampled frames with MTCNN, group them into tracks and cut square crops.

MTCNN (the ``mtcnn`` package; its weights ship inside the wheel) runs on a padded, downscaled
copy of each frame: the padding lets it find faces that fill the whole frame (face-crop videos),
the downscaling bounds its cost on 1080p and 4K frames. Frames still without a face get a last
pass on a contrast-equalised (CLAHE) copy, for dark footage. Boxes are mapped back to frame pixels.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

from core.settings import Settings, get_settings
from core.types import Box, Face, FaceCrop, Frame, Track

if TYPE_CHECKING:  # importing mtcnn imports TensorFlow; only get_face_finder() pays for it
    from mtcnn import MTCNN

# Frames per MTCNN call (same-size frames stack into one tensor). Measured on this 2-core CPU
# with 32 frames of a 1080p clip: 155 ms of CPU per frame one at a time, 70-80 ms in batches of
# 8, no better in batches of 32, which need +1.4 GB of memory against +0.4 GB for 8.
DETECT_BATCH = 8
# A detection whose box lies mostly in the padding is a face cut by the frame edge; keep it only
# when at least this fraction of the box is inside the frame, else the crop would be mostly border.
MIN_VISIBLE_FRACTION = 0.4
# Passes tried on frames where the first (padded, upright) pass found nothing: (padding, or None
# for settings.detect_pad; rotation in degrees). Unpadded first: it finds most of the misses.
RETRY_PASSES: tuple[tuple[float | None, float], ...] = ((0.0, 0.0), (None, 25.0), (None, -25.0))
# The last pass, on frames every other pass missed: CLAHE on the lightness (L of LAB) of the
# downscaled copy, which lifts faces out of dark, flat footage that MTCNN sees as noise. Clip
# limit measured on darkened copies of the shared DFDC clips (frames with a face after this pass,
# 4 dark clips): 2.0 -> 51, 3.0 -> 75, 4.0 -> 78, 6.0 -> 86 but worse on the darkest clip (7 vs 19)
# and noisier; 3.0 is the middle. 8x8 tiles: 4x4 gave 65 against 78 at 4.0; 16x16 no better.
CLAHE_CLIP_LIMIT = 3.0
# Detect less: MTCNN looks for faces of 20 px and up in the copy it is given (its min_face_size),
# so a copy with more resolution than a useful face needs only builds a larger image pyramid. A
# face under MIN_USEFUL_FACE_PX frame pixels gives a crop (1.3x) under a third of the smallest
# model input (160 px): upscaled more than 3x it is mostly interpolation, no signal for either
# detector. So the copy is never larger than MTCNN_MIN_FACE / MIN_USEFUL_FACE_PX of the frame
# (that face is then 20 px in it): the same pyramid as min_face_size=40 on the full-size copy.
# Done by shrinking, not with mtcnn 1.0's min_face_size: its pyramid keeps the same number of
# levels whatever the minimum, so a larger one pushes the last levels under PNet's 12 px window
# and the call finds no face at all (a 640x480 synthetic face clip: 0 faces at 29, 2 of 2 at 20).
# At 1080p and above the copy is already at 1/4 or less (detect_max_side), so nothing changes
# there; frames under ~1000 px are detected at half their size or less. Measured on the 195
# shared clips (scripts/face_rate_table.py): 40 px loses no more than 1 frame in 32 of any clip;
# 61 px (a crop of half the input) would lose most frames of some 256 px face-crop clips, whose
# faces are 50-60 px.
MTCNN_MIN_FACE = 20
MIN_USEFUL_FACE_PX = 40
MAX_DETECT_SCALE = MTCNN_MIN_FACE / MIN_USEFUL_FACE_PX
CLAHE_TILES = (8, 8)

_create_lock = threading.Lock()
# One MTCNN is shared by every Streamlit session of the process; its stages keep no per-call
# state, but serialising calls costs nothing on a 2-core CPU (TensorFlow already uses both cores
# for one call) and keeps it safe whatever TensorFlow does underneath.
_detect_lock = threading.Lock()
_face_finder: MTCNN | None = None


@dataclass(frozen=True, eq=False)
class FaceResult:
    """Faces found in a clip's sampled frames.

    Attributes:
        faces: every face kept, in frame order, then by track id within a frame.
        tracks: one per person, track 0 = the person seen in most frames.
        crops: the square crop of each face, in the same order as ``faces``.
        detect_s: wall seconds spent preparing frames, running MTCNN and tracking.
        crop_s: wall seconds spent cutting crops (and resizing them to ``inputs``' sides).
        inputs: for each side asked for, every crop resized to it from the native crop, in the
            order of ``crops`` (the models' input, made before the frame is let go).
        frames: (index, time_s) of each frame looked at, in order.
    """

    faces: tuple[Face, ...]
    tracks: tuple[Track, ...]
    crops: tuple[FaceCrop, ...]
    detect_s: float
    crop_s: float
    inputs: dict[int, tuple[np.ndarray, ...]] = field(default_factory=dict)  # side -> crops at that side
    frames: tuple[tuple[int, float], ...] = ()  # (index, time_s) of every frame looked at


def get_face_finder() -> MTCNN:
    """The process-wide MTCNN face finder, created on first use (it loads TensorFlow).

    "Detector" in this project means a deepfake classifier (models/detector.py); MTCNN finds faces.
    """
    global _face_finder
    with _create_lock:
        if _face_finder is None:
            from mtcnn import MTCNN

            _face_finder = MTCNN(stages="face_and_landmarks_detection", device="CPU:0")
        return _face_finder


@dataclass(frozen=True)
class _Prepared:
    """A frame made ready for MTCNN, and how to map its pixels back to the frame."""

    image: np.ndarray  # float32 (H', W', 3)
    scale: float  # frame pixels -> detector pixels
    border: int  # padding added on each side, in detector pixels
    to_unrotated: np.ndarray | None  # 2x3 affine undoing the rotation, None when not rotated


@dataclass(frozen=True)
class _Shrunk:
    """The downscaled, not yet padded copy of a frame for one padding: what every pass starts from.

    Kept (instead of the frame) for frames the first pass missed, so the retries see exactly the
    pixels they would have made from the full frame.
    """

    small: np.ndarray  # uint8 (h, w, 3)
    width: int  # the frame's width
    border: int  # padding on each side, in detector pixels


def _shrink_for(image: np.ndarray, pad: float, max_side: int) -> _Shrunk:
    """Downscale a frame so that, padded by ``pad`` of its shorter side, it fits ``max_side``,
    and to MAX_DETECT_SCALE of its size at most (see MIN_USEFUL_FACE_PX)."""
    h, w = image.shape[:2]
    # Pad by a fraction of the shorter side: a frame-filling face spans the shorter side, and
    # this keeps more resolution on wide frames than padding each side by its own length.
    pad_px = pad * min(h, w)
    scale = min(MAX_DETECT_SCALE, max_side / (max(h, w) + 2 * pad_px))
    small = image
    if scale < 1.0:
        small = _shrink(image, (max(1, round(w * scale)), max(1, round(h * scale))))
    return _Shrunk(small, w, round(pad_px * scale))


def _finish(shrunk: _Shrunk, angle: float = 0.0, equalise: bool = False) -> _Prepared:
    """Optionally equalise, then pad and optionally rotate a shrunk frame for detection."""
    small = shrunk.small
    if equalise:
        # On the small copy: cheaper, and before padding so the black border skews no tile.
        small = _equalise(small)
    border = shrunk.border
    padded = cv2.copyMakeBorder(small, border, border, border, border, cv2.BORDER_CONSTANT, value=0)
    to_unrotated = None
    if angle:
        centre = (padded.shape[1] / 2, padded.shape[0] / 2)
        rotation = cv2.getRotationMatrix2D(centre, angle, 1.0)
        padded = cv2.warpAffine(padded, rotation, (padded.shape[1], padded.shape[0]))
        to_unrotated = cv2.invertAffineTransform(rotation)
    # float32 input keeps MTCNN's normalisation in float32 (uint8 input makes it float64).
    return _Prepared(padded.astype(np.float32), small.shape[1] / shrunk.width, border, to_unrotated)


def _prepare(image: np.ndarray, pad: float, max_side: int, angle: float = 0.0, equalise: bool = False) -> _Prepared:
    """Downscale, optionally equalise, pad and optionally rotate a frame for detection."""
    return _finish(_shrink_for(image, pad, max_side), angle, equalise)


def _equalise(image: np.ndarray) -> np.ndarray:
    """A copy with CLAHE applied to its lightness only, so colours (and hue cues) are kept."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    # One CLAHE object per call: sessions detect in parallel threads, and creating one is cheap.
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILES)
    lab[..., 0] = clahe.apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def _shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average downscale to ``size`` (w, h).

    OpenCV's INTER_AREA is fast only for integer factors (measured on a 1080p frame: 5 ms for 1/3
    against 18 ms for 1/3.84), so shrink by the largest integer factor first, then the rest.
    """
    h, w = image.shape[:2]
    factor = min(w // size[0], h // size[1])
    if factor >= 2:
        image = cv2.resize(image, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _to_frame_box(row: np.ndarray, prep: _Prepared, h: int, w: int) -> Box | None:
    """Map one MTCNN row [image, x, y, w, h, confidence, …] to a box clipped to the frame."""
    cx, cy = row[1] + row[3] / 2, row[2] + row[4] / 2
    if prep.to_unrotated is not None:
        # A rotation keeps sizes, so only the centre moves; the box stays upright in the frame.
        cx, cy = prep.to_unrotated @ np.array([cx, cy, 1.0])
    bw, bh = row[3] / prep.scale, row[4] / prep.scale
    x0 = (cx - prep.border) / prep.scale - bw / 2
    y0 = (cy - prep.border) / prep.scale - bh / 2
    x1, y1 = x0 + bw, y0 + bh
    cx0, cy0, cx1, cy1 = max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)
    visible = max(0.0, cx1 - cx0) * max(0.0, cy1 - cy0)
    if bw <= 0 or bh <= 0 or visible < MIN_VISIBLE_FRACTION * bw * bh:
        return None
    return Box(float(cx0), float(cy0), float(cx1 - cx0), float(cy1 - cy0))


def detect_batch(
    prepared: Sequence[_Prepared], shape: tuple[int, ...], settings: Settings
) -> list[list[tuple[Box, float]]]:
    """One MTCNN call on at most DETECT_BATCH prepared copies of same-size frames of ``shape``.

    Returns:
        For each copy, its faces above the confidence floor as (box in frame pixels, confidence),
        in MTCNN's order.
    """
    h, w = shape[:2]
    found: list[list[tuple[Box, float]]] = [[] for _ in prepared]
    finder = get_face_finder()
    with _detect_lock:
        rows = finder.detect_faces(
            [p.image for p in prepared],
            output_type="numpy",
            box_format="xywh",
        )
    for row in np.asarray(rows).reshape(-1, 16):
        if float(row[5]) < settings.face_confidence:
            continue
        box = _to_frame_box(row, prepared[int(row[0])], h, w)
        if box is not None:
            found[int(row[0])].append((box, float(row[5])))
    return found


def detect_boxes(images: Sequence[np.ndarray], settings: Settings | None = None) -> list[list[tuple[Box, float]]]:
    """Face boxes (frame pixels) and confidences in each image, above settings.face_confidence.

    MTCNN first runs on every image padded by settings.detect_pad. When most images had a face
    but some did not, those are retried unpadded, then rotated by ±25° (MTCNN misses strongly
    tilted heads): measured on the DFDC face-crop clips, this lifts the frames with a face from
    575 to 630 of 640, at no cost for clips where every frame (or no frame) has a face. Images
    still without a face then get one pass on a contrast-equalised copy (dark footage), whatever
    the rest of the clip did: a clip with no face at all pays it (measured: 32 frames, 2.2 s of
    detection become 4.4-5 s on this 2-core CPU), an image with a face never does. Boxes are
    always in the original image's pixels, so crops come from the original. The passes are
    :class:`core.engine.face_scan.FaceScan`'s, which can also take the frames one at a time.

    Args:
        images: upright RGB uint8 frames (H, W, 3); sizes may differ.
        settings: detection size, padding and confidence floor; defaults to get_settings().

    Returns:
        For each image, a list of (box, confidence), most confident first.

    Raises:
        ValueError: an image is not an RGB uint8 array.
    """
    from core.engine.face_scan import FaceScan  # it builds on this module

    scan = FaceScan(settings or get_settings())
    for position, image in enumerate(images):
        scan.add(Frame(position, 0.0, image))
    return scan.finish().boxes


def crop_square(image: np.ndarray, box: Box, margin: float) -> np.ndarray:
    """Square crop of side max(w, h) * margin centred on ``box``, kept inside the frame.

    The square is shifted (not cut) to stay inside the frame and shrunk only when the frame itself
    is smaller than it, so the crop is always square and never distorted.

    Args:
        image: RGB uint8 frame (H, W, 3).
        box: face box in frame pixels.
        margin: how much larger than the box the square is (1.3 = 30 % larger).

    Returns:
        A contiguous uint8 (S, S, 3) copy at the frame's native resolution (models resize).

    Raises:
        ValueError: the image is not an RGB uint8 array or margin is not positive.
    """
    _check_image(image)
    if not margin > 0:
        raise ValueError(f"margin must be positive, got {margin}")
    h, w = image.shape[:2]
    side = min(max(1, round(max(box.w, box.h) * margin)), h, w)
    x0 = min(max(0, round(box.cx - side / 2)), w - side)
    y0 = min(max(0, round(box.cy - side / 2)), h - side)
    return np.ascontiguousarray(image[y0 : y0 + side, x0 : x0 + side]).copy()


def find_faces(
    frames: Iterable[Frame],
    settings: Settings | None = None,
    *,
    input_sizes: Sequence[int] = (),
    keep_side: int | None = None,
    reread: Callable[[list[int]], Iterable[Frame]] | None = None,
) -> FaceResult:
    """Detect faces in sampled frames, group them into tracks and cut their square crops.

    Frames are taken one at a time and let go once their faces are cut (see
    :class:`core.engine.face_scan.FaceScan` for what is kept and when).

    Args:
        frames: sampled frames in time order (a list, or :func:`core.engine.video.iter_sampled`).
        settings: detection and crop settings; defaults to get_settings().
        input_sizes: also resize every crop to these sides (the models' inputs), from the
            native crop, into ``FaceResult.inputs``.
        keep_side: crops larger than this are kept shrunk to it (area average); None keeps them
            at the frame's native resolution.
        reread: decodes the given frame indices again; when given, a frame the first pass
            missed is not kept at full resolution beyond a byte budget but decoded again if a
            retry finds a face in it. None keeps every missed frame (the caller holds them anyway).

    Returns:
        A FaceResult; empty tuples when no face was found.
    """
    from core.engine.face_scan import FaceScan  # it builds on this module

    scan = FaceScan(settings or get_settings(), input_sizes=input_sizes, keep_side=keep_side, reread=reread)
    for frame in frames:
        scan.add(frame)
    return scan.finish().faces


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = getattr(image, "shape", type(image).__name__), getattr(image, "dtype", "")
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {got}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError("expected a non-empty image")
