"""core/engine/video.py and core/engine/frame_reader.py: formats, orientation, bad input, limits, sampling
strategies, shared clips."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.engine import frame_reader
from core.engine.video import even_indices, file_sha256, probe, read_clip, sample_frames
from core.errors import InvalidClipError
from core.settings import VIDEO_EXTENSIONS, get_settings
from tests import clipgen

# name -> (fps, codec tags OpenCV may report)
FORMATS = {
    "face": (24, {"h264", "avc1"}),
    "hevc_mov": (30, {"hevc", "hvc1"}),
    "vp9_webm": (25, {"vp90", "vp09"}),
    "av1_mkv": (24, {"av01"}),
    "mjpg_avi": (15, {"mjpg"}),
}


@pytest.fixture(scope="module")
def source_faces() -> list[np.ndarray]:
    """The frames the face clips were encoded from."""
    return clipgen.face_frames()


def difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_decodes_upright_rgb(synthetic_clips, source_faces, name):
    fps, codecs = FORMATS[name]
    info = probe(synthetic_clips[name])
    assert (info.width, info.height, info.frame_count, info.rotation) == (640, 480, 48, 0)
    assert info.fps == pytest.approx(fps)
    assert info.duration_s == pytest.approx(48 / fps)
    assert info.codec.lower() in codecs
    frames = sample_frames(synthetic_clips[name], 6, info)
    assert [f.index for f in frames] == even_indices(48, 6)
    for frame in frames:
        assert frame.image.dtype == np.uint8 and frame.image.shape == (480, 640, 3)
        assert frame.time_s == pytest.approx(frame.index / fps, abs=1e-3)
        error = difference(frame.image, source_faces[frame.index])
        assert error < 10
        # RGB, not BGR: the channel-swapped frame is several times further from the source.
        assert difference(frame.image[..., ::-1], source_faces[frame.index]) > 3 * error + 5


def test_portrait_clip_comes_out_upright(synthetic_clips):
    path = synthetic_clips["portrait"]
    stored = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    stored.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    assert stored.read()[1].shape[:2] == (1080, 1920)  # the premise: stored landscape
    stored.release()
    info, frames = read_clip(path, 4)
    assert (info.width, info.height, info.rotation) == (1080, 1920, 90)
    upright = clipgen.portrait_frames()
    for frame in frames:
        assert frame.image.shape == (1920, 1080, 3)
        assert difference(frame.image, upright[frame.index]) < 10
        assert difference(frame.image, upright[frame.index][::-1, ::-1]) > 20  # not upside down


BAD = {
    "empty": "is empty",
    "random_bytes": "is not a video file (it looks like unrecognised data)",
    "text": "is not a video file (it looks like text)",
    "png": "is not a video file (it looks like a PNG image)",
    "truncated": "truncated or damaged",
    "one_frame": "has only 1 frame",
    "too_long": "is 7200 s long; the limit is 600 s",
}


@pytest.mark.parametrize("name", BAD)
def test_bad_file_gives_one_plain_line(bad_clips, name):
    path = bad_clips[name]
    with pytest.raises(InvalidClipError) as caught:
        read_clip(path)
    message = caught.value.message
    assert BAD[name] in message and path.name in message
    assert "\n" not in message and "Traceback" not in message and "cv2" not in message


def test_damaged_file_prints_nothing(bad_clips, capfd):
    capfd.readouterr()
    with pytest.raises(InvalidClipError):
        probe(bad_clips["truncated"])
    assert capfd.readouterr().err == ""  # FFmpeg's "moov atom not found" is silenced


def test_missing_file(tmp_path):
    with pytest.raises(InvalidClipError, match="no such file"):
        probe(tmp_path / "nothing.mp4")


@pytest.mark.parametrize(
    "limits, expected",
    [
        ({"max_duration_s": 1.0}, "face.mp4 is 2 s long; the limit is 1 s"),
        ({"max_upload_mb": 0}, "MB; the limit is 0 MB"),
        ({"max_side_px": 320}, "resolution 640x480 exceeds the 320 px limit"),
        ({"min_frames": 49}, "has only 48 frames; a clip needs at least 49"),
    ],
)
def test_limits_from_settings(face_clip, limits, expected):
    with pytest.raises(InvalidClipError) as caught:
        probe(face_clip, get_settings(**limits))
    assert expected in caught.value.message


def test_side_limit_uses_upright_size(synthetic_clips):
    with pytest.raises(InvalidClipError, match="resolution 1080x1920 exceeds the 1500 px limit"):
        probe(synthetic_clips["portrait"], get_settings(max_side_px=1500))


def test_sampling_is_even_with_times(face_clip):
    info = probe(face_clip)
    frames = sample_frames(face_clip, 8, info)
    indices = [f.index for f in frames]
    assert indices == [0, 7, 13, 20, 27, 34, 40, 47]
    assert [f.time_s for f in frames] == pytest.approx([i / 24 for i in indices], abs=1e-3)


def test_sampling_counts(face_clip):
    info = probe(face_clip)
    assert [f.index for f in sample_frames(face_clip, 100, info)] == list(range(48))
    assert len(sample_frames(face_clip, 32, info, get_settings(max_frames=5))) == 5
    with pytest.raises(ValueError, match="at least 1"):
        sample_frames(face_clip, 0, info)
    assert len(read_clip(face_clip)[1]) == 32  # settings.default_frames


@pytest.mark.parametrize("name", ["face", "hevc_mov", "vp9_webm", "av1_mkv"])
def test_strategies_give_the_same_frames(synthetic_clips, name):
    path = synthetic_clips[name]
    info = probe(path)
    results = {s: sample_frames(path, 7, info, strategy=s) for s in ("sequential", "seek", "auto")}
    reference = results["sequential"]
    for strategy, frames in results.items():
        assert [f.index for f in frames] == [f.index for f in reference], strategy
        assert all(np.array_equal(a.image, b.image) for a, b in zip(frames, reference)), strategy


def encode_test_pattern(path: Path, ffmpeg: str, gop: int, frames: int = 240) -> Path:
    """A small clip whose every frame differs (testsrc2 shows a counter), with a given GOP."""
    command = [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size=96x64:rate=24:duration={frames / 24}",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-pix_fmt",
        "yuv420p",
        str(path),
    ]
    subprocess.run(command, capture_output=True, check=True, timeout=60)
    return path


def test_auto_seeks_only_past_keyframes(tmp_path, ffmpeg):
    short_gop = encode_test_pattern(tmp_path / "gop10.mp4", ffmpeg, gop=10)
    long_gop = encode_test_pattern(tmp_path / "gop240.mp4", ffmpeg, gop=240)
    wanted = even_indices(240, 4)  # gaps of ~80 frames: long enough for a seek to pay
    assert frame_reader.plan_seeks(long_gop, wanted) == [False] * 4  # one keyframe: nothing to skip
    plan = frame_reader.plan_seeks(short_gop, wanted)
    assert plan[0] is False and all(plan[1:])
    info = probe(short_gop)
    auto = sample_frames(short_gop, 4, info)
    sequential = sample_frames(short_gop, 4, info, strategy="sequential")
    assert [f.index for f in auto] == [f.index for f in sequential] == wanted
    assert all(np.array_equal(a.image, b.image) for a, b in zip(auto, sequential))
    assert [f.time_s for f in auto] == pytest.approx([i / 24 for i in wanted], abs=1e-3)


def test_missing_frame_count_is_counted(synthetic_clips, source_faces):
    path = synthetic_clips["no_duration_webm"]
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) <= 0  # the premise: the container cannot say
    cap.release()
    info = probe(path)
    assert (info.frame_count, info.fps) == (48, 25)
    for strategy in ("auto", "seek"):  # "seek" falls back to reading on: no index to seek with
        frames = sample_frames(path, 32, info, strategy=strategy)
        assert [f.index for f in frames] == even_indices(48, 32)
        assert difference(frames[-1].image, source_faces[47]) < 10


def test_stream_ending_early_returns_true_indices(tmp_path, ffmpeg, source_faces):
    path = clipgen.make_truncated_tail(tmp_path, ffmpeg)
    info = probe(path)
    assert info.frame_count == 48  # the container still claims all of them
    for strategy in ("sequential", "seek", "auto"):
        frames = sample_frames(path, 32, info, strategy=strategy)
        indices = [f.index for f in frames]
        assert 0 < len(frames) < 32 and indices == sorted(set(indices)), strategy
        for frame in frames:  # each frame really is the one its index names
            assert difference(frame.image, source_faces[frame.index]) < 10, strategy


def test_file_sha256_streams_the_whole_file(face_clip):
    expected = hashlib.sha256(face_clip.read_bytes()).hexdigest()
    assert file_sha256(face_clip) == expected == probe(face_clip).sha256


@pytest.mark.shared
def test_shared_portrait_clip_is_upright(shared_data):
    info, frames = read_clip(shared_data / "clips" / "fake" / "dfdc_brtujopkby.mp4", 2)
    assert (info.width, info.height) == (1080, 1920)
    assert all(f.image.shape == (1920, 1080, 3) for f in frames)


@pytest.mark.shared
@pytest.mark.slow
def test_probe_every_shared_clip(shared_data):
    paths = sorted(
        p
        for folder in ("clips", "facecrop-clips")
        for p in (shared_data / folder).rglob("*")
        if p.suffix in VIDEO_EXTENSIONS
    )
    assert len(paths) >= 89
    for path in paths:
        info = probe(path)
        assert info.width > 0 and info.height > 0 and info.fps > 0, path.name
        assert info.frame_count >= 2 and 0 < info.duration_s <= 600, path.name
