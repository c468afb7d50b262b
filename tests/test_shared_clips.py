"""``analyze CLIP --json -`` on every real clip of ../shared/data (69 clips + 20 face-crop clips).

Runs in-process through the command's ``main`` so TensorFlow, MTCNN and the models start once; the
MesoNet authors' weights come from ../shared/data/mesonet/weights. Each report must validate
against the schema and find a face in at least 90 % of its sampled frames; the portrait clip must
give upright crops, and the clips where a second person is visible one track per visible face.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import jsonschema
import pytest

from core.__main__ import main
from core.engine import report as report_io
from tests.conftest import SHARED_DATA

pytestmark = [pytest.mark.shared, pytest.mark.slow]

SHARED = SHARED_DATA
PORTRAIT = "clips/fake/dfdc_brtujopkby.mp4"

# Tracks per clip whose notes say "a second person is visible", checked by looking at every crop
# and every sampled frame (32 frames). In all four the noted second person sits in the foreground
# with their back (or the back of their head) to the camera, so that person has no visible face;
# other people pass in the background:
#   01 kitchen_pan: the actress + a man at the counter in the first two samples (a woman beside
#       him shows only a half-hidden profile, which MTCNN does not find) -> 2
#   13 walking_down_indoor_hall: two people walking side by side, both faces always visible -> 2
#   18 kitchen_pan: the actor only (the foreground person shows an ear and glasses, no face) -> 1
#   27 kitchen_pan: the actress + a man in profile at the fridge in the first samples -> 2
SECOND_PERSON_TRACKS = {
    "clips/real/ffpp_actors_c40_01__kitchen_pan.mp4": 2,
    "clips/real/ffpp_actors_c40_13__walking_down_indoor_hall_disgust.mp4": 2,
    "clips/real/ffpp_actors_c40_18__kitchen_pan.mp4": 1,
    "clips/real/ffpp_actors_c40_27__kitchen_pan.mp4": 2,
}


def _clips() -> list[str]:
    if not SHARED.is_dir():
        return ["(shared data missing)"]
    found = [
        str(p.relative_to(SHARED))
        for folder in ("clips", "facecrop-clips")
        for p in sorted((SHARED / folder).rglob("*.mp4"))
    ]
    return found


CLIPS = _clips()


@pytest.fixture(scope="module")
def analyzed(shared_data: Path, mesonet_weights_dir: Path):
    """A function clip -> (exit code, parsed report); each clip is analysed once per module."""
    cache: dict[str, tuple[int, dict | None, str]] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DFI_WEIGHTS_DIR", str(mesonet_weights_dir))

        def run(clip: str) -> tuple[int, dict | None, str]:
            if clip not in cache:
                out, err = io.StringIO(), io.StringIO()
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    code = main(["analyze", str(shared_data / clip), "--json", "-"])
                cache[clip] = (code, json.loads(out.getvalue()) if code == 0 else None, err.getvalue())
            return cache[clip]

        yield run


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(report_io.load_schema())


def test_every_clip_is_listed(shared_data):
    listed = {row["path"] for row in csv.DictReader((shared_data / "clips.csv").open())}
    clips = {c for c in CLIPS if c.startswith("clips/")}
    assert len(clips) == 69 and clips <= listed
    assert len([c for c in CLIPS if c.startswith("facecrop-clips/")]) == 20


@pytest.mark.parametrize("clip", CLIPS)
def test_clip_report_is_valid_and_finds_faces(analyzed, validator, clip):
    code, data, err = analyzed(clip)
    assert code == 0, err
    validator.validate(data)
    assert data["status"] == "ok"
    sampled = data["sampling"]["frame_indices"]
    with_face = {f["frame_index"] for f in data["faces"]}
    assert len(sampled) >= 16
    assert len(with_face) >= 0.9 * len(sampled), f"faces in only {len(with_face)}/{len(sampled)} frames"
    mesonet = [m for m in data["models"] if m["family"] == "mesonet"]
    assert mesonet and all(m["verdict"] in ("FAKE", "REAL", "UNCERTAIN") for m in mesonet)
    assert all(len(m["frames"]) == len(data["faces"]) for m in mesonet)


@pytest.mark.parametrize("clip, tracks", sorted(SECOND_PERSON_TRACKS.items()))
def test_one_track_per_visible_face(analyzed, clip, tracks):
    _, data, _ = analyzed(clip)
    found = sorted({f["track_id"] for f in data["faces"]})
    assert found == list(range(tracks))
    # Track 0 is the person on screen throughout.
    per_track = [sum(f["track_id"] == t for f in data["faces"]) for t in found]
    assert per_track[0] >= 0.9 * len(data["sampling"]["frame_indices"])
    # Within a sampled frame, each track has at most one face.
    keys = [(f["frame_index"], f["track_id"]) for f in data["faces"]]
    assert len(keys) == len(set(keys))


def test_portrait_clip_gives_upright_crops(analyzed, shared_data, mesonet_weights_dir, monkeypatch):
    _, data, _ = analyzed(PORTRAIT)
    assert data["clip"]["height"] > data["clip"]["width"]  # 1080x1920 after rotation
    monkeypatch.setenv("DFI_WEIGHTS_DIR", str(mesonet_weights_dir))
    from core.engine import analysis, faces

    report = analysis.analyze(shared_data / PORTRAIT, ["meso4.df"], frames=8)
    detector = faces.get_face_finder()
    upright = 0
    for crop in report.crops:
        found = detector.detect_faces(crop.image)
        if not found:
            continue
        k = max(found, key=lambda f: f["confidence"])["keypoints"]
        eyes_y = (k["left_eye"][1] + k["right_eye"][1]) / 2
        mouth_y = (k["mouth_left"][1] + k["mouth_right"][1]) / 2
        nose_between = eyes_y < k["nose"][1] < mouth_y
        upright += eyes_y < mouth_y and nose_between
    assert len(report.crops) >= 7 and upright >= 0.9 * len(report.crops)
