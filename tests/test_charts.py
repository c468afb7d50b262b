"""core/engine/report_queries.py and the page helpers that draw from a ClipReport, on a hand-built report.

The report has two models (one with a band of its own), two people and frames with no face, so
gaps, per-person lines, band shading and the click-to-crop lookup are all exercised.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.engine.report_queries import crop_verdict, crops_by_track, face_at_point, short_names
from core.types import (
    Box,
    ClipInfo,
    ClipReport,
    Face,
    FaceCrop,
    FrameScore,
    ModelResult,
    Sampling,
    Timings,
    Track,
    Verdict,
)
from views.figures.timeline import VERDICT_COLOURS, timeline_figure

TIMES = (0.0, 1.0, 2.0, 3.0)
INDICES = (0, 25, 50, 75)
# person 0 is seen in frames 0, 25, 75 (no face at 50); person 1 only in 25 and 50.
SEEN = {0: (0, 25, 75), 1: (25, 50)}


def _result(
    mid: str, family: str, p: dict[tuple[int, int], float], band=(0.3, 0.7), verdict=Verdict.FAKE
) -> ModelResult:
    frames = tuple(FrameScore(i, INDICES.index(i) * 1.0, t, v) for (i, t), v in sorted(p.items()))
    return ModelResult(mid, family, mid.upper(), 0.8, verdict, 0.5, band, "mean", 0.1, frames)


def make_report(extra_models: tuple[ModelResult, ...] = ()) -> ClipReport:
    """Two people, two scoring models (+ any extra results)."""
    faces, crops = [], []
    for track, seen in SEEN.items():
        for idx in seen:
            face = Face(idx, INDICES.index(idx) * 1.0, Box(10 + 50 * track, 10, 40, 40), 0.99, track)
            faces.append(face)
            crops.append(FaceCrop(face, np.full((48, 48, 3), 30 * (idx // 25) + track, np.uint8)))
    keys = [(i, t) for t, seen in SEEN.items() for i in seen]
    meso = _result("meso4.df", "mesonet", dict.fromkeys(keys, 0.9))
    xcep = _result(
        "xception.x", "xception", {k: 0.1 if k[1] == 0 else 0.9 for k in keys}, band=(0.4, 0.6), verdict=Verdict.REAL
    )
    return ClipReport(
        status="ok",
        clip=ClipInfo("c.mp4", "0" * 64, 100, 80, 25.0, 100, 4.0),
        sampling=Sampling(4, INDICES, TIMES),
        faces=tuple(faces),
        models=(meso, xcep) + extra_models,
        timings=Timings(),
        versions={},
        crops=tuple(crops),
        tracks=tuple(Track(t, tuple(f for f in faces if f.track_id == t)) for t in SEEN),
    )


def test_timeline_has_one_line_per_model_and_person_with_gaps():
    fig = timeline_figure(make_report())
    names = [t.name for t in fig.data]
    assert names == ["MesoNet · person 1", "MesoNet · person 2", "Xception · person 1", "Xception · person 2"]
    first = fig.data[0]
    assert list(first.x) == list(TIMES)
    assert list(first.y) == [0.9, 0.9, None, 0.9]  # no face at 2.0 s: a gap, not a made-up score
    assert first.connectgaps is False
    assert [list(c) for c in first.customdata] == [[i, 0] for i in INDICES]
    assert "frame %{customdata[0]}" in first.hovertemplate
    assert fig.layout.hovermode == "x unified"


def test_timeline_shades_each_band_and_draws_each_threshold_once():
    fig = timeline_figure(make_report())
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    uncertain = [(s.y0, s.y1) for s in rects if s.fillcolor == VERDICT_COLOURS[Verdict.UNCERTAIN]]
    assert sorted(uncertain) == [(0.3, 0.7), (0.4, 0.6)]
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert [s.y0 for s in lines] == [0.5]


def test_unavailable_models_draw_no_line_and_no_band():
    gone = ModelResult(
        "x.gone",
        "xception",
        "Gone",
        None,
        Verdict.UNAVAILABLE,
        0.5,
        (0.1, 0.9),
        "mean",
        0.0,
        (),
        message="weights missing",
    )
    fig = timeline_figure(make_report((gone,)))
    assert all("Gone" not in t.name for t in fig.data)
    assert all((s.y0, s.y1) != (0.1, 0.9) for s in fig.layout.shapes)


def test_face_at_point_maps_a_click_back_to_its_crop():
    report = make_report()
    crop = face_at_point(report, {"x": 1.0, "y": 0.9, "customdata": [25, 1]})
    assert (crop.face.frame_index, crop.face.track_id) == (25, 1)
    assert face_at_point(report, {"x": 2.0, "customdata": [50, 0]}) is None  # the gap
    nearest = face_at_point(report, {"x": 2.9})
    assert nearest.face.frame_index == 75
    assert face_at_point(report, {}) is None


def test_crop_verdict_needs_agreement():
    bands = {"a": (0.3, 0.7), "b": (0.4, 0.6)}
    assert crop_verdict({"a": 0.8, "b": 0.65}, bands) is Verdict.FAKE
    assert crop_verdict({"a": 0.2, "b": 0.4}, bands) is Verdict.REAL
    assert crop_verdict({"a": 0.8, "b": 0.1}, bands) is Verdict.UNCERTAIN
    assert crop_verdict({}, bands) is Verdict.NO_FACE


def test_short_names_fall_back_to_ids_when_a_family_repeats():
    report = make_report((_result("mesoinception4.df", "mesonet", {}),))
    assert short_names(report.models) == {
        "meso4.df": "meso4.df",
        "xception.x": "Xception",
        "mesoinception4.df": "mesoinception4.df",
    }


def test_crops_by_track_rows_are_in_time_order():
    rows = crops_by_track(make_report())
    assert list(rows) == [0, 1]
    assert [c.face.frame_index for c in rows[0]] == [0, 25, 75]


def test_gallery_and_sentences_on_the_hand_built_report():
    pytest.importorskip("streamlit")
    from views.analyze.gallery import gallery_html
    from views.common.verdicts import disagreement_sentence, summary_sentence

    report = make_report()
    page = gallery_html(report)
    assert page.count('class="dfi-crop-img"') == len(report.crops) == 5
    assert page.count("data:image/jpeg;base64,") == 5
    assert "Person 1" in page and "Person 2" in page
    assert "MesoNet 90%" in page and "Xception 10%" in page
    text, verdict = summary_sentence(report)
    assert "disagree" in text and verdict is Verdict.UNCERTAIN
    assert "MesoNet says fake (80% chance of fake)" in disagreement_sentence(report)


def test_plain_words_for_scores_trust_and_single_detector():
    pytest.importorskip("streamlit")
    from dataclasses import replace

    from views.common.trust_words import percent, reliability
    from views.common.verdicts import summary_sentence

    assert percent(0.001) == "less than 1%" and percent(0.999, short=True) == ">99%"
    assert percent(0.4249) == "42%"
    assert "weak hint" in reliability({"video_auc": 0.689})
    assert "reliable" in reliability({"video_auc": 0.95}) and reliability({}) is None
    report = make_report()
    gone = replace(report.models[1], p_fake=None, verdict=Verdict.UNAVAILABLE, frames=())
    only_meso = replace(report, models=(report.models[0], gone))
    text, verdict = summary_sentence(only_meso)
    assert text == "The only detector that could run (MesoNet) thinks this face was manipulated — a likely deepfake."
    assert verdict is Verdict.FAKE
    assert summary_sentence(replace(report, status="no_faces"))[1] is Verdict.NO_FACE
