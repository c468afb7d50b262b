"""Open, validate and sample video clips with OpenCV's FFmpeg backend.

Every failure a person can cause (wrong file, damaged file, clip outside the limits) becomes an
:class:`~core.errors.InvalidClipError` with one plain line; no cv2 error or FFmpeg log escapes.
Frames come out upright (rotation metadata applied by OpenCV) and RGB; which frames, and whether
to seek or read on to reach them, is :mod:`core.engine.frame_reader`'s part.
"""

from __future__ import annotations

import codecs
import math
import os
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

# FFmpeg prints lines such as "moov atom not found" straight to stderr, which would break the
# command line's one-line error contract. OpenCV reads these once, when its FFmpeg backend first
# starts, so they are set before cv2 is used; setdefault lets a developer turn the logs back on.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET

import cv2  # noqa: E402  (must follow the environment set-up above)

# OpenCV's own "[ WARN ] ... can't be used to capture by name" on a damaged file: cv2 may have been
# imported (and its log level fixed) before this module, so lower it at run time, unless someone
# chose a level other than the default.
if cv2.utils.logging.getLogLevel() == cv2.utils.logging.LOG_LEVEL_WARNING:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

# Frame sampling and the sequential-or-seek reading live in core.engine.frame_reader; even_indices is
# re-exported so callers keep importing the public API from here.
from core.engine.frame_reader import (  # noqa: E402
    STRATEGIES,
    choose_seeks,
    even_indices,
    iter_frames,
    scan_packets,
)
from core.errors import InvalidClipError  # noqa: E402
from core.hashing import file_sha256  # noqa: E402,F401  (public here too: callers import it from core.engine.video)
from core.settings import Settings, get_settings  # noqa: E402
from core.types import ClipInfo, Frame  # noqa: E402

FORMATS_HINT = "use an MP4, MOV, M4V, AVI, MKV or WebM video"


# ISO-BMFF brands that are not video: still images and audio share the MP4 box structure.
_NOT_VIDEO_BRANDS = {
    b"heic": "a HEIC image",
    b"heix": "a HEIC image",
    b"mif1": "a HEIF image",
    b"avif": "an AVIF image",
    b"M4A ": "an audio file",
    b"M4B ": "an audio file",
}
_SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive",
}


def _container(head: bytes) -> str | None:
    """The container family named by a file's first bytes, or None when it is not one we accept.

    Only these reach FFmpeg: it probes content, not names, so a playlist or image renamed .mp4
    would otherwise be opened (an HLS playlist can make FFmpeg read other files or URLs).
    """
    if head[4:8] == b"ftyp" and head[8:12] in _NOT_VIDEO_BRANDS:
        return None
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "an MP4/MOV file"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "a Matroska/WebM file"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "an AVI file"
    return None


def _looks_like(head: bytes) -> str:
    """A plain description of a file that is not a video, for the error message."""
    if head[4:8] == b"ftyp" and head[8:12] in _NOT_VIDEO_BRANDS:
        return _NOT_VIDEO_BRANDS[head[8:12]]
    for magic, what in _SIGNATURES.items():
        if head.startswith(magic):
            return what
    try:
        # Incremental: a multi-byte character cut at the end of the head is not an error.
        text = codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        return "unrecognised data"
    return "text" if "".join(text.split()).isprintable() else "unrecognised data"


@contextmanager
def _capture(path: Path, kind: str) -> Iterator[cv2.VideoCapture]:
    """An opened FFmpeg capture with auto-rotation on, always released."""
    cap = None
    try:
        # The FFmpeg backend only: others (image sequences) would read '%d' in a name as a pattern.
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise InvalidClipError(
                f"{path.name} looks like {kind} but is not a video OpenCV can read (tried its "
                "FFmpeg backend): it is probably truncated or damaged"
            )
        # On by default in OpenCV 4.x; set so portrait phone clips come out upright regardless.
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        yield cap
    except cv2.error:
        raise InvalidClipError(f"{path.name}: OpenCV failed while decoding it; the file is damaged") from None
    finally:
        if cap is not None:
            cap.release()


def _check_file(path: Path, settings: Settings) -> str:
    """Cheap checks before decoding; returns the container kind."""
    if not path.is_file():
        raise InvalidClipError(f"no such file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise InvalidClipError(f"the file {path.name} is empty")
    if size > settings.max_upload_bytes:
        raise InvalidClipError(f"{path.name} is {size / 2**20:.1f} MB; the limit is {settings.max_upload_mb} MB")
    with open(path, "rb") as handle:
        head = handle.read(16)
    kind = _container(head)
    if kind is None:
        raise InvalidClipError(f"{path.name} is not a video file (it looks like {_looks_like(head)}); {FORMATS_HINT}")
    return kind


def _reported_count(cap: cv2.VideoCapture) -> int | None:
    """The container's frame count, or None when it is missing or absurd (webm/mkv often are)."""
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    if not math.isfinite(count) or count < 1 or count > 1e8:
        return None
    return int(round(count))


def _check_side(name: str, width: int, height: int, settings: Settings) -> None:
    if max(width, height) > settings.max_side_px:
        raise InvalidClipError(f"{name}: resolution {width}x{height} exceeds the {settings.max_side_px} px limit")


def probe(path: str | Path, settings: Settings | None = None) -> ClipInfo:
    """Open a clip, check it against the limits and describe it.

    Args:
        path: the clip file.
        settings: limits to apply; ``get_settings()`` when omitted.

    Returns:
        ClipInfo with the size of the upright frames, fps, frame count, duration and codec.

    Raises:
        InvalidClipError: the file is missing, empty, not a video, damaged, or outside the limits.
    """
    settings = settings or get_settings()
    path = Path(path)
    kind = _check_file(path, settings)
    with _capture(path, kind) as cap:
        fps = cap.get(cv2.CAP_PROP_FPS)
        if not math.isfinite(fps) or not 0 < fps <= 1000:
            raise InvalidClipError(f"{path.name} has no usable frame rate; the file is damaged")
        # Refuse huge frames before decoding one (the reported size is enough for that).
        _check_side(
            path.name, int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), settings
        )
        ok, first = cap.read()
        if not ok or first is None:
            raise InvalidClipError(f"{path.name} is truncated or damaged: no frames could be decoded")
        height, width = first.shape[:2]
        _check_side(path.name, width, height, settings)
        rotation = int(round(cap.get(cv2.CAP_PROP_ORIENTATION_META))) % 360
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC))
        codec = fourcc.to_bytes(4, "little").decode("ascii", "replace").strip("\x00 ")
        count = _reported_count(cap)
        if count is None:
            limit = int(settings.max_duration_s * fps) + 1
            count = _count_frames(path, cap, limit)
    if count < settings.min_frames:
        noun = "frame" if count == 1 else "frames"
        raise InvalidClipError(f"{path.name} has only {count} {noun}; a clip needs at least {settings.min_frames}")
    duration = count / fps
    if duration > settings.max_duration_s:
        raise InvalidClipError(f"{path.name} is {duration:.0f} s long; the limit is {settings.max_duration_s:.0f} s")
    return ClipInfo(
        name=path.name,
        sha256=file_sha256(path),
        width=int(width),
        height=int(height),
        fps=float(fps),
        frame_count=int(count),
        duration_s=float(duration),
        rotation=rotation,
        codec=codec,
    )


def _count_frames(path: Path, cap: cv2.VideoCapture, limit: int) -> int:
    """Count frames when the container does not say: packets first (no decoding), else decode.

    ``cap`` has already returned frame 0. Counting stops past ``limit``: that is too long anyway.
    """
    packets = scan_packets(path, limit)
    if packets is not None:
        return packets.count
    count = 1
    while count <= limit and cap.grab():
        count += 1
    return count


def sample_frames(
    path: str | Path, n: int, info: ClipInfo, settings: Settings | None = None, *, strategy: str = "auto"
) -> list[Frame]:
    """Decode ``n`` evenly spaced upright RGB frames: all of :func:`iter_sampled` as a list."""
    return list(iter_sampled(path, n, info, settings, strategy=strategy))


def iter_sampled(
    path: str | Path,
    n: int,
    info: ClipInfo,
    settings: Settings | None = None,
    *,
    strategy: str = "auto",
    only: Collection[int] | None = None,
) -> Iterator[Frame]:
    """Decode ``n`` evenly spaced upright RGB frames, one at a time.

    Args:
        path: the clip (already checked by :func:`probe`).
        n: how many frames; capped by ``settings.max_frames``.
        info: the clip's ClipInfo from :func:`probe`.
        settings: limits; ``get_settings()`` when omitted.
        strategy: "auto" (per frame, seek only past a keyframe where that decodes less),
            "sequential" (grab every frame, convert only the wanted ones) or "seek".
        only: decode just these frame indices of the sample again (a second look at a few frames
            whose pixels were not kept); the same pixels, since decoding is deterministic.

    Yields:
        Frames in increasing index order. Fewer than ``n`` when the clip is shorter, or when the
        stream ends early (a container that overstates its length): then the frames actually
        decoded, with their true indices.

    Raises:
        ValueError: ``n`` < 1 or an unknown strategy (before anything is opened).
        InvalidClipError: the file can no longer be opened.
    """
    settings = settings or get_settings()
    if n < 1:
        raise ValueError(f"frames to sample must be at least 1, not {n}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be auto, sequential or seek, not {strategy!r}")
    return _iter_sampled(Path(path), n, info, settings, strategy, only)


def _iter_sampled(
    path: Path, n: int, info: ClipInfo, settings: Settings, strategy: str, only: Collection[int] | None
) -> Iterator[Frame]:
    wanted = even_indices(info.frame_count, min(n, settings.max_frames))
    if only is not None:
        wanted = sorted(set(only))
    with _capture(path, _check_file(path, settings)) as cap:
        seeks = choose_seeks(path, wanted, strategy, seekable=_reported_count(cap) is not None)
        yield from iter_frames(cap, wanted, seeks, info.fps)


def read_clip(path: str | Path, n: int | None = None, settings: Settings | None = None) -> tuple[ClipInfo, list[Frame]]:
    """Probe a clip and sample ``n`` frames (``settings.default_frames`` when None).

    Raises:
        InvalidClipError: as :func:`probe`, or when no frame could be decoded at all.
    """
    settings = settings or get_settings()
    info = probe(path, settings)
    frames = sample_frames(path, n or settings.default_frames, info, settings)
    if not frames:
        raise InvalidClipError(f"{info.name} is truncated or damaged: no frames could be decoded")
    return info, frames
