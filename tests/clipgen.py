"""Small synthetic test clips, made in well under a second each.

Faces come from ``skimage.data.astronaut()`` (Eileen Collins, a public-domain NASA photo); her face
box in that 512x512 image is about x 182-265, y 64-171 (MTCNN, confidence 0.999). Clips are encoded
with Debian's ffmpeg (argument lists, never a shell) or, for MJPG, with cv2.VideoWriter.
"""

from __future__ import annotations

import functools
import math
import subprocess
from pathlib import Path

# Imported before cv2 is first used here: OpenCV's FFmpeg backend reads the quiet log settings that
# core.engine.video sets only once, when it first starts (and cv2.VideoWriter would start it).
import core.engine.video  # noqa: F401  isort: skip
import cv2
import numpy as np
import skimage.data

FACE_CENTER = (223.0, 118.0)  # astronaut face centre (x, y) in the 512x512 source image
SIZE = (640, 480)  # (width, height) of the landscape test clips
FRAMES = 48

# name -> (suffix, fps, encoder arguments); "av1" is filled in with whichever encoder exists.
FORMATS: dict[str, tuple[str, int, list[str]]] = {
    "h264_mp4": (".mp4", 24, ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]),
    # Phones write HEVC in .mov tagged hvc1 (Apple's players refuse hev1).
    "hevc_mov": (
        ".mov",
        30,
        [
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-tag:v",
            "hvc1",
            "-x265-params",
            "log-level=error",
        ],
    ),
    "vp9_webm": (".webm", 25, ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv420p"]),
    "av1_mkv": (".mkv", 24, []),
}
MJPG_FPS = 15
AV1_ENCODERS = {
    "libsvtav1": ["-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p"],
    "libaom-av1": ["-c:v", "libaom-av1", "-cpu-used", "8", "-usage", "realtime", "-pix_fmt", "yuv420p"],
    "librav1e": ["-c:v", "librav1e", "-speed", "10", "-pix_fmt", "yuv420p"],
}


def _view(image: np.ndarray, center: tuple[float, float], scale: float, size: tuple[int, int]) -> np.ndarray:
    """The part of ``image`` around ``center``, magnified ``scale`` times, as a ``size`` frame."""
    width, height = size
    matrix = np.array(
        [[scale, 0, width / 2 - scale * center[0]], [0, scale, height / 2 - scale * center[1]]], dtype=np.float64
    )
    return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def _motion(i: int, n: int) -> tuple[float, float, float]:
    """A small pan (dx, dy) and zoom factor for frame ``i`` of ``n``."""
    s = i / max(n - 1, 1)
    return 20 * math.sin(2 * math.pi * s), 10 * s, 1 + 0.1 * s


def face_frames(n: int = FRAMES, size: tuple[int, int] = SIZE) -> list[np.ndarray]:
    """One large, slowly panning and zooming face (face about 40 % of the frame height)."""
    image = skimage.data.astronaut()
    base = size[1] / 240  # 240 source rows fill the frame: the face box is ~107 rows tall
    frames = []
    for i in range(n):
        dx, dy, zoom = _motion(i, n)
        center = (FACE_CENTER[0] + dx, FACE_CENTER[1] + 12 + dy)
        frames.append(_view(image, center, base * zoom, size))
    return frames


def two_face_frames(n: int = FRAMES, size: tuple[int, int] = SIZE) -> list[np.ndarray]:
    """Two faces side by side (the second mirrored), each in its own half of the frame."""
    half = (size[0] // 2, size[1])
    return [np.ascontiguousarray(np.hstack([f, f[:, ::-1]])) for f in face_frames(n, half)]


def no_face_frames(n: int = FRAMES, size: tuple[int, int] = SIZE) -> list[np.ndarray]:
    """A panning cup of coffee (``skimage.data.coffee()``): no face anywhere."""
    image = skimage.data.coffee()
    frames = []
    for i in range(n):
        dx, dy, zoom = _motion(i, n)
        frames.append(_view(image, (300 + dx, 200 + dy), 1.1 * zoom, size))
    return frames


def portrait_frames(n: int = 16, size: tuple[int, int] = (1080, 1920)) -> list[np.ndarray]:
    """Upright portrait frames (a phone held vertically): a face, head up."""
    image = skimage.data.astronaut()
    return [_view(image, (FACE_CENTER[0], FACE_CENTER[1] + 40 + 2 * i), 3.5, size) for i in range(n)]


@functools.cache
def _encoders(ffmpeg: str) -> str:
    return subprocess.run(
        [ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def av1_args(ffmpeg: str) -> list[str]:
    """Arguments for the first AV1 encoder this ffmpeg has (Debian 12 has all three)."""
    listing = _encoders(ffmpeg)
    for name, args in AV1_ENCODERS.items():
        if f" {name} " in listing:
            return args
    raise RuntimeError(f"{ffmpeg} has no AV1 encoder (looked for {', '.join(AV1_ENCODERS)})")


def encode(
    frames: list[np.ndarray], path: Path, ffmpeg: str, fps: int, codec: list[str], extra: tuple[str, ...] = ()
) -> Path:
    """Pipe RGB frames into ffmpeg and write ``path`` (or stdout when ``path`` is pipe:1)."""
    height, width = frames[0].shape[:2]
    command = [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-r",
        str(fps),
        "-i",
        "-",
        *codec,
        *extra,
        str(path),
    ]
    data = b"".join(np.ascontiguousarray(f, dtype=np.uint8).tobytes() for f in frames)
    subprocess.run(command, input=data, capture_output=True, check=True, timeout=120)
    return path


def write_mjpg_avi(frames: list[np.ndarray], path: Path, fps: int = MJPG_FPS) -> Path:
    """Motion-JPEG AVI through cv2.VideoWriter (no ffmpeg needed)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    try:
        if not writer.isOpened():
            raise RuntimeError(f"cv2.VideoWriter cannot write MJPG to {path}")
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))  # VideoWriter takes BGR
    finally:
        writer.release()
    return path


def write_portrait(path: Path, ffmpeg: str, frames: list[np.ndarray] | None = None) -> Path:
    """H.264 MP4 stored landscape with a display matrix that turns it upright, as phones write.

    The stored frames are the upright ones turned 90 degrees counter-clockwise; the matrix says
    "turn 90 degrees clockwise to show" (ffprobe: rotation=-90). ffmpeg 5.1 writes that matrix for
    the legacy tag ``rotate=270`` (ffmpeg 6.1+ also has ``-display_rotation``).
    """
    upright = frames if frames is not None else portrait_frames()
    stored = [cv2.rotate(f, cv2.ROTATE_90_COUNTERCLOCKWISE) for f in upright]
    plain = encode(stored, path.with_suffix(".stored.mp4"), ffmpeg, 30, FORMATS["h264_mp4"][2])
    # ffmpeg 5.1 drops the rotate tag when encoding, so it is added by a stream-copy remux.
    command = [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(plain),
        "-c",
        "copy",
        "-metadata:s:v",
        "rotate=270",
        str(path),
    ]
    subprocess.run(command, capture_output=True, check=True, timeout=60)
    plain.unlink()
    return path


def write_without_duration(frames: list[np.ndarray], path: Path, ffmpeg: str, fps: int = 25) -> Path:
    """VP9 WebM written to a pipe, so it has no duration or index (as browsers record WebM).

    OpenCV then reports a negative frame count for it.
    """
    height, width = frames[0].shape[:2]
    command = [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-r",
        str(fps),
        "-i",
        "-",
        *FORMATS["vp9_webm"][2],
        "-f",
        "webm",
        "pipe:1",
    ]
    data = b"".join(f.tobytes() for f in frames)
    result = subprocess.run(command, input=data, capture_output=True, check=True, timeout=120)
    path.write_bytes(result.stdout)
    return path


def write_too_long(path: Path, ffmpeg: str, seconds: int = 7200) -> Path:
    """A 64x64, 1 fps grey clip ``seconds`` long: cheap to make, far beyond the duration limit."""
    command = [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"color=c=gray:s=64x64:r=1:d={seconds}",
        *FORMATS["h264_mp4"][2],
        str(path),
    ]
    subprocess.run(command, capture_output=True, check=True, timeout=120)
    return path


def truncate(source: Path, path: Path, keep: float = 0.5) -> Path:
    """The first ``keep`` fraction of ``source``'s bytes."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def make_clips(folder: Path, ffmpeg: str) -> dict[str, Path]:
    """The readable test clips, by name; all but ``mjpg_avi`` need ffmpeg.

    Names: ``face`` (H.264 .mp4, 640x480, 48 frames at 24 fps), ``hevc_mov`` (30 fps),
    ``vp9_webm`` (25 fps), ``av1_mkv`` (24 fps), ``mjpg_avi`` (15 fps) — the same moving face in
    each format; ``no_face``, ``two_faces`` (H.264 .mp4, 48 frames, 24 fps); ``portrait``
    (1080x1920 upright, stored 1920x1080 with rotation metadata, 16 frames at 30 fps);
    ``no_duration_webm`` (VP9 WebM without duration: frame count unknown to the container, 48
    frames at 25 fps).
    """
    folder.mkdir(parents=True, exist_ok=True)
    faces = face_frames()
    clips: dict[str, Path] = {}
    for name, (suffix, fps, codec) in FORMATS.items():
        key = "face" if name == "h264_mp4" else name
        codec = codec or av1_args(ffmpeg)
        clips[key] = encode(faces, folder / f"{key}{suffix}", ffmpeg, fps, codec)
    clips["mjpg_avi"] = write_mjpg_avi(faces, folder / "mjpg_avi.avi")
    h264 = FORMATS["h264_mp4"][2]
    clips["no_face"] = encode(no_face_frames(), folder / "no_face.mp4", ffmpeg, 24, h264)
    clips["two_faces"] = encode(two_face_frames(), folder / "two_faces.mp4", ffmpeg, 24, h264)
    clips["portrait"] = write_portrait(folder / "portrait.mp4", ffmpeg)
    clips["no_duration_webm"] = write_without_duration(faces, folder / "no_duration.webm", ffmpeg)
    return clips


def make_bad_files(folder: Path, ffmpeg: str) -> dict[str, Path]:
    """Files that must be refused with an InvalidClipError, by name.

    Names: ``empty``, ``random_bytes``, ``text``, ``png`` (a PNG renamed .mp4), ``truncated``
    (first half of an H.264 .mp4 whose index sits at the end), ``one_frame``, ``too_long``
    (2 hours at 1 fps).
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    face = face_frames(1)
    bad = {
        "empty": folder / "empty.mp4",
        "random_bytes": folder / "random_bytes.mp4",
        "text": folder / "text.mp4",
        "png": folder / "png.mp4",
    }
    bad["empty"].write_bytes(b"")
    bad["random_bytes"].write_bytes(rng.integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes())
    bad["text"].write_text("This is a text file, not a video.\n" * 20)
    _, png = cv2.imencode(".png", cv2.cvtColor(face[0], cv2.COLOR_RGB2BGR))
    bad["png"].write_bytes(png.tobytes())
    whole = encode(face_frames(), folder / "whole.mp4", ffmpeg, 24, FORMATS["h264_mp4"][2])
    bad["truncated"] = truncate(whole, folder / "truncated.mp4")
    whole.unlink()
    bad["one_frame"] = encode(face, folder / "one_frame.mp4", ffmpeg, 24, FORMATS["h264_mp4"][2])
    bad["too_long"] = write_too_long(folder / "too_long.mp4", ffmpeg)
    return bad


def make_truncated_tail(folder: Path, ffmpeg: str) -> Path:
    """An H.264 .mp4 with its index first, cut in half: it opens and claims 48 frames, but the
    stream ends after about half of them (the "container overstates its length" case)."""
    folder.mkdir(parents=True, exist_ok=True)
    whole = encode(
        face_frames(), folder / "faststart.mp4", ffmpeg, 24, FORMATS["h264_mp4"][2], ("-movflags", "+faststart")
    )
    return truncate(whole, folder / "truncated_tail.mp4")
