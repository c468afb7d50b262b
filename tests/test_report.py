"""core.engine.report: the JSON against its schema, the CSV rows, and the annotated video read back."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from dataclasses import replace

import cv2
import jsonschema
import numpy as np
import pytest

from core.engine import analysis, video
from core.engine import report as report_io
from core.errors import DFIError
from core.types import Box, ClipReport, Face, FrameScore, ModelResult, Sampling, Timings, Verdict
from tests.test_analysis import CLIP, FakeDetector, loaded, make_card


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = report_io.load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def two_model_report(fake_pipeline, plan=None) -> ClipReport:
    if plan is not None:
        fake_pipeline["plan"] = plan
    dets = loaded(FakeDetector(make_card()), FakeDetector(make_card("xception.t", "xception"), scale=0.5))
    unavailable = analysis.LoadedModel(make_card("mesoinception4.df"), None, "weights for mesoinception4.df not found")
    return analysis.analyze_loaded("clip.mp4", [*dets, unavailable], frames=8)


# The fake pipeline fixture lives in test_analysis; reuse it here.
from tests.test_analysis import fake_pipeline  # noqa: E402,F401


def test_ok_report_validates_and_has_exactly_the_contract_keys(fake_pipeline, validator):
    report = two_model_report(fake_pipeline, {0: dict.fromkeys(range(8), 51), 1: {0: 200, 3: 200}})
    data = json.loads(report_io.report_to_json(report))
    validator.validate(data)
    assert data["schema"] == "dfi.report/1" and data["status"] == "ok"
    assert list(data) == ["schema", "status", "clip", "sampling", "faces", "models", "timings", "versions"]
    assert set(data["timings"]) == {"decode_s", "detect_s", "classify_s", "total_s"}
    assert set(data["models"][0]) == {
        "id",
        "family",
        "display_name",
        "p_fake",
        "verdict",
        "threshold",
        "band",
        "aggregation",
        "seconds",
        "frames",
        "message",
    }
    # Track 1 (2 of 8 frames: enough) at 200/255 decides: FAKE for one, 0.39 UNCERTAIN for the other.
    assert [m["verdict"] for m in data["models"]] == ["FAKE", "UNCERTAIN", "UNAVAILABLE"]
    assert data["models"][2]["p_fake"] is None and data["models"][2]["message"].startswith("weights for")
    assert data["models"][0]["message"] is None


def test_no_face_report_validates_with_null_scores(fake_pipeline, validator):
    data = json.loads(report_io.report_to_json(two_model_report(fake_pipeline, {})))
    validator.validate(data)
    assert data["status"] == "no_faces" and data["faces"] == []
    assert [(m["verdict"], m["p_fake"]) for m in data["models"]] == [
        ("NO_FACE", None),
        ("NO_FACE", None),
        ("UNAVAILABLE", None),
    ]


def test_several_reports_make_a_json_array(fake_pipeline, validator):
    report = two_model_report(fake_pipeline)
    data = json.loads(report_io.report_to_json([report, report]))
    assert isinstance(data, list) and len(data) == 2
    for item in data:
        validator.validate(item)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(status="maybe"),
        lambda d: d["models"][0].update(verdict="PROBABLY_FAKE"),
        lambda d: d["models"][0].update(p_fake=1.5),
        lambda d: d["models"][0].update(p_fake=None),  # a verdict without a score
        lambda d: d["models"][2].update(p_fake=0.5),  # an unavailable model with a made-up score
        lambda d: d["models"][0]["frames"][0].update(p_fake=-0.1),
        lambda d: d.update(extra=1),
        lambda d: d["clip"].pop("sha256"),
        lambda d: d["faces"][0].update(box=[1, 2, 3]),
        lambda d: d.update(faces=[]),  # status ok but no face
        lambda d: d["timings"].update(total_s="fast"),
    ],
)
def test_schema_is_strict(fake_pipeline, validator, mutate):
    data = json.loads(report_io.report_to_json(two_model_report(fake_pipeline)))
    mutate(data)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(data)


def test_json_refuses_nan_and_numpy(fake_pipeline):
    report = two_model_report(fake_pipeline)
    bad = replace(report, models=(replace(report.models[0], p_fake=math.nan),))
    with pytest.raises(ValueError):
        report_io.report_to_json(bad)
    numpy_timings = replace(report, versions={"dfi": np.str_("x"), "n": np.float32(1.0)})
    with pytest.raises(TypeError):
        report_io.report_to_json(numpy_timings)


def test_csv_has_one_row_per_frame_and_model(fake_pipeline):
    report = two_model_report(fake_pipeline, {0: dict.fromkeys(range(8), 51), 1: {2: 230}})
    buf = io.StringIO()
    report_io.write_csv(report, buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert list(rows[0]) == ["clip", "model_id", "frame_index", "time_s", "track_id", "p_fake", "verdict"]
    scored = [r for r in rows if r["frame_index"]]
    assert len(scored) == 2 * 9  # 9 faces, two models that ran
    first = next(r for r in scored if r["model_id"] == "meso4.df" and r["track_id"] == "1")
    assert first["clip"] == "fake.mp4" and first["frame_index"] == "20"
    assert float(first["p_fake"]) == pytest.approx(230 / 255, abs=1e-6) and first["verdict"] == "FAKE"
    assert {r["verdict"] for r in scored if r["track_id"] == "0" and r["model_id"] == "meso4.df"} == {"REAL"}
    # The unavailable model still gets a row saying so.
    (gone,) = [r for r in rows if r["model_id"] == "mesoinception4.df"]
    assert gone["verdict"] == "UNAVAILABLE" and gone["p_fake"] == "" and gone["frame_index"] == ""


def test_csv_to_a_path(fake_pipeline, tmp_path):
    out = tmp_path / "scores.csv"
    report_io.write_csv([two_model_report(fake_pipeline)] * 2, out)
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join(report_io.CSV_COLUMNS) and len(lines) == 1 + 2 * (2 * 8 + 1)


def _write_test_clip(path, size=(160, 120), frames=20, fps=10.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        img = np.full((size[1], size[0], 3), 40 + 8 * i, np.uint8)
        writer.write(img)
    writer.release()


@pytest.mark.parametrize("with_ffmpeg", [True, False])
def test_annotated_video_reads_back_with_the_right_size(tmp_path, monkeypatch, with_ffmpeg):
    if with_ffmpeg and shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is missing")
    if not with_ffmpeg:
        monkeypatch.setattr(report_io.shutil, "which", lambda name: None)
    clip = tmp_path / "clip.mp4"
    _write_test_clip(clip)
    info, frames = video.read_clip(clip, 6)
    faces = tuple(Face(f.index, f.time_s, Box(30, 20, 40, 50), 0.99, 0) for f in frames)
    scores = tuple(FrameScore(f.index, f.time_s, 0, 0.9) for f in frames)
    model = ModelResult(
        "meso4.df", "mesonet", "MesoNet (Meso4, DF)", 0.9, Verdict.FAKE, 0.5, (0.3, 0.7), "mean", 0.01, scores
    )
    report = ClipReport(
        "ok",
        info,
        Sampling(6, tuple(f.index for f in frames), tuple(f.time_s for f in frames)),
        faces,
        (model,),
        Timings(),
        {"dfi": "test"},
    )
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    monkeypatch.setattr(report_io.tempfile, "tempdir", str(temp_dir))
    out = report_io.write_annotated_video(report, clip, tmp_path / "annotated.mp4")

    cap = cv2.VideoCapture(str(out))
    read = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        read.append(frame)
    cap.release()
    assert len(read) == len(frames)
    assert read[0].shape == (120, 160, 3)
    # The box is drawn in red (FAKE) on a flat grey frame: its left edge is far from the grey.
    edge = read[0][40:60, 30].astype(int)
    assert np.mean(edge[:, 2] - edge[:, 1]) > 60
    assert list(temp_dir.iterdir()) == []  # the mp4v temp file is cleaned up
    if with_ffmpeg:
        fourcc = int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FOURCC))
        assert fourcc.to_bytes(4, "little") in (b"avc1", b"h264", b"H264")


def test_annotated_video_refuses_a_different_clip(tmp_path):
    clip, other = tmp_path / "a.mp4", tmp_path / "b.mp4"
    _write_test_clip(clip)
    _write_test_clip(other, frames=12)
    report = ClipReport(
        "no_faces",
        replace(CLIP, sha256=video.file_sha256(clip)),
        Sampling(4, (0,), (0.0,)),
        (),
        (),
        Timings(),
        {"dfi": "t"},
    )
    with pytest.raises(DFIError, match="not the clip this report was made from"):
        report_io.write_annotated_video(report, other, tmp_path / "out.mp4")
