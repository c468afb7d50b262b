"""Which frames to sample and how to decode them: read on sequentially, or seek past a keyframe.

The reading half of :mod:`core.engine.video`, which opens and validates the clip (and quiets FFmpeg's
logging before any file is opened) and then hands its capture to :func:`read_frames`. Call it
through :func:`core.engine.video.sample_frames`; nothing here checks the file.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.types import Frame

STRATEGIES = ("auto", "sequential", "seek")


def even_indices(frame_count: int, n: int) -> list[int]:
    """``n`` evenly spaced frame indices from the first to the last frame (fewer if short)."""
    if frame_count <= n:
        return list(range(frame_count))
    return sorted({int(i) for i in np.linspace(0, frame_count - 1, n).round()})


# Sequential grab() vs seeking, measured on this 2-core CPU (32 frames, 1080p H.264, shared load):
#   10 s DFDC clip, 300 frames, keyframe every 250:  sequential 1.37 s, seek 16.8 s
#   56 s actors clip, 1350 frames, keyframe every 250: sequential 4.33 s, seek 15.3 s
#   same 56 s clip re-encoded with a keyframe every 24: sequential 12.9 s, seek 9.3 s
# Seeking never skips decoding: OpenCV jumps to the keyframe before (target - 16) and decodes
# forward, so a seek costs (target - that keyframe) frames plus a fixed overhead (about 8 frames'
# decoding here), while sequential reading costs the gap since the previous frame. The ratio
# frame_count / n alone cannot decide (both 56 s clips have the same ratio and opposite winners);
# the keyframe spacing does. So "auto" reads the keyframe positions (demuxing only: 23 ms for the
# 1350 packets of the 56 s clip) and seeks exactly where that decodes fewer frames; when every gap
# is too short for a seek to pay (gap <= 16 + 8: 32 frames of any clip under ~30 s at 25 fps)
# it reads sequentially without scanning.
_SEEK_BACKOFF = 16  # frames OpenCV's FFmpeg seek backs off before the target (cap_ffmpeg_impl.hpp)
_SEEK_OVERHEAD = 8  # one seek costs about as much as decoding this many more frames (measured)


@dataclass(frozen=True)
class Packets:
    """What demuxing a clip's video stream found: its packet count and keyframe positions."""

    count: int
    keyframes: list[int]


def scan_packets(path: Path, limit: int) -> Packets | None:
    """Video packet count and keyframe positions, read by demuxing only (OpenCV's raw mode).

    Stops after ``limit`` + 1 packets. Returns None when raw mode is unavailable.
    """
    cap = None
    try:
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_FORMAT, -1])
        if not cap.isOpened():
            return None
        count, keyframes = 0, []
        while count <= limit and cap.grab():
            if cap.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME):
                keyframes.append(count)
            count += 1
        return Packets(count, keyframes)
    except cv2.error:
        return None
    finally:
        if cap is not None:
            cap.release()


def plan_seeks(path: Path, wanted: list[int]) -> list[bool]:
    """For each wanted frame, whether seeking to it decodes fewer frames than reading on."""
    gaps = np.diff([-1, *wanted])
    no_seeks = [False] * len(wanted)
    if len(wanted) == 0 or gaps.max() <= _SEEK_BACKOFF + _SEEK_OVERHEAD:
        return no_seeks
    packets = scan_packets(path, wanted[-1])
    if packets is None or not packets.keyframes:
        return no_seeks
    keys, plan, position = packets.keyframes, [], 0
    for target in wanted:
        landing = keys[max(bisect.bisect_right(keys, max(target - _SEEK_BACKOFF, 0)) - 1, 0)]
        seek_cost = target - landing + _SEEK_OVERHEAD
        plan.append(landing > position and seek_cost < target - position)
        position = target + 1
    return plan


def choose_seeks(path: Path, wanted: list[int], strategy: str, seekable: bool) -> list[bool]:
    """The seek plan for a strategy (one of :data:`STRATEGIES`; the caller has checked it).

    ``seekable`` is False when the container cannot count its frames: seeking relies on the
    container's index, so such a clip is read sequentially whatever the strategy.
    """
    if strategy == "sequential" or not seekable:
        return [False] * len(wanted)
    if strategy == "seek":
        return [True] * len(wanted)
    return plan_seeks(path, wanted)


def _frame_time(cap: cv2.VideoCapture, index: int, fps: float, previous: float) -> float:
    """The frame's presentation time when the container gives a sane one, else index / fps."""
    ms = cap.get(cv2.CAP_PROP_POS_MSEC)
    if math.isfinite(ms) and ms >= 0 and (index == 0 or ms > 0) and ms / 1000 > previous:
        return ms / 1000
    return index / fps


def read_frames(cap: cv2.VideoCapture, wanted: list[int], seeks: list[bool], fps: float) -> list[Frame]:
    """All of :func:`iter_frames` as a list."""
    return list(iter_frames(cap, wanted, seeks, fps))


def iter_frames(cap: cv2.VideoCapture, wanted: list[int], seeks: list[bool], fps: float) -> Iterator[Frame]:
    """Decode the wanted frames from an opened capture, seeking before those marked in ``seeks``.

    A generator, so that a caller can let each frame go before the next is decoded (a 4K frame is
    25 MB; 128 of them held together would be 3 GB).

    Yields:
        RGB frames in increasing index order; it stops at the first frame the stream fails to
        give (a container that overstates its length), so the frames keep their true indices.
    """
    last_index, last_time = -1, -1.0
    position = 0  # index of the frame the next grab() returns
    for target, seek in zip(wanted, seeks):
        if seek:
            cap.set(cv2.CAP_PROP_POS_FRAMES, target)
            position = int(cap.get(cv2.CAP_PROP_POS_FRAMES))  # where OpenCV actually landed
        while position < target:
            if not cap.grab():
                return
            position += 1
        # grab() decodes; retrieve() does the costly colour conversion, so only for wanted frames.
        if not cap.grab():
            return
        index, position = position, position + 1
        ok, bgr = cap.retrieve()
        if not ok or bgr is None:
            return
        if index <= last_index:
            continue  # a seek that landed short would repeat a frame
        time_s = _frame_time(cap, index, fps, last_time)
        last_index, last_time = index, float(time_s)
        # OpenCV decodes to BGR; the detector and the models expect RGB.
        yield Frame(index=index, time_s=float(time_s), image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
