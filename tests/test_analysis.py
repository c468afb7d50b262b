"""core.engine.analysis with hand-made frames, faces and fake detectors: no video decoding, no TensorFlow."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from core.engine import analysis
from core.engine.faces import FaceResult
from core.errors import InvalidClipError, UnknownModelError, WeightsHashError, WeightsMissingError
from core.types import Box, ClipInfo, Face, FaceCrop, Frame, FrameScore, Track, Verdict
from models.cards import CardError

CLIP = ClipInfo(name="fake.mp4", sha256="ab" * 32, width=64, height=48, fps=25.0, frame_count=100, duration_s=4.0)


CROP_SIDE = 24  # the fake cards' input side: the crops below are cut at it, so inputs == crops


def make_card(card_id: str = "meso4.df", family: str = "mesonet", band=(0.3, 0.7)) -> SimpleNamespace:
    """A stand-in for a ModelCard with just what analysis reads."""
    return SimpleNamespace(
        id=card_id, family=family, display_name=f"Test {card_id}", threshold=0.5, band=band, input_size=CROP_SIDE
    )


class FakeDetector:
    """p_fake = the crop's mean pixel / 255, so a test sets a face's score by painting its crop."""

    def __init__(self, card, scale: float = 1.0):
        self.card, self.scale, self.calls = card, scale, []

    def predict(self, crops):
        self.calls.append(len(crops))
        return np.array([float(np.mean(c)) / 255.0 * self.scale for c in crops], dtype=np.float32)


def make_frames(n: int = 8) -> list[Frame]:
    return [Frame(index=i * 10, time_s=i * 0.4, image=np.zeros((48, 64, 3), np.uint8)) for i in range(n)]


def make_faces(frames: list[Frame], plan: dict[int, dict[int, int]]) -> FaceResult:
    """plan: track id -> {frame position: crop pixel value}."""
    faces, crops = [], []
    for pos, frame in enumerate(frames):
        for track_id in sorted(plan):
            if pos in plan[track_id]:
                face = Face(frame.index, frame.time_s, Box(4.0 + 30 * track_id, 4.0, 20.0, 20.0), 0.99, track_id)
                faces.append(face)
                crops.append(FaceCrop(face, np.full((CROP_SIDE, CROP_SIDE, 3), plan[track_id][pos], np.uint8)))
    tracks = tuple(Track(t, tuple(f for f in faces if f.track_id == t)) for t in sorted(plan))
    return FaceResult(
        tuple(faces),
        tracks,
        tuple(crops),
        detect_s=0.01,
        crop_s=0.001,
        inputs={CROP_SIDE: tuple(c.image for c in crops)},
        frames=tuple((f.index, f.time_s) for f in frames),
    )


@pytest.fixture
def fake_pipeline(monkeypatch):
    """Replace clip reading and face finding; returns a setter for the faces plan."""
    frames = make_frames()
    state = {"plan": {0: dict.fromkeys(range(8), 51)}, "reads": 0}

    def iter_sampled(path, n, info, settings=None, **kw):
        state["reads"] += 1
        return iter(frames[:n])

    monkeypatch.setattr(analysis.video, "probe", lambda path, settings=None: CLIP)
    monkeypatch.setattr(analysis.video, "iter_sampled", iter_sampled)
    monkeypatch.setattr(
        analysis.faces, "find_faces", lambda fr, settings=None, **kw: make_faces(list(fr), state["plan"])
    )
    return state


def loaded(*detectors) -> list[analysis.LoadedModel]:
    return [analysis.LoadedModel(d.card, d) for d in detectors]


@pytest.mark.parametrize(
    "p, expected",
    [
        (0.0, Verdict.REAL),
        (0.3, Verdict.REAL),
        (0.31, Verdict.UNCERTAIN),
        (0.69, Verdict.UNCERTAIN),
        (0.7, Verdict.FAKE),
        (1.0, Verdict.FAKE),
    ],
)
def test_verdict_for_uses_band_edges_inclusively(p, expected):
    assert analysis.verdict_for(p, (0.3, 0.7)) is expected


def test_verdict_with_empty_band_is_a_plain_threshold():
    assert analysis.verdict_for(0.5, (0.5, 0.5)) is Verdict.FAKE
    assert analysis.verdict_for(0.49, (0.5, 0.5)) is Verdict.REAL


def test_aggregations_by_name():
    values = [0.1, 0.2, 0.9]
    assert analysis.aggregate(values, "mean") == pytest.approx(0.4)
    assert analysis.aggregate(values, "median") == pytest.approx(0.2)
    assert analysis.aggregate(values, "max") == pytest.approx(0.9)
    with pytest.raises(ValueError, match="must be one of mean, median, max"):
        analysis.aggregate(values, "mode")


def test_a_face_seen_once_does_not_outvote_the_main_person():
    # Track 0 in 8 frames (low), track 1 glimpsed once (very high): 1 < max(2, 25% of 8).
    per_track = {0: (0.2, 8), 1: (0.99, 1)}
    assert analysis.deciding_track(per_track) == 0


def test_most_suspicious_track_with_enough_frames_decides():
    per_track = {0: (0.2, 8), 1: (0.8, 2), 2: (0.9, 1)}
    assert analysis.deciding_track(per_track) == 1


def test_longest_track_decides_when_none_has_enough_frames():
    assert analysis.deciding_track({0: (0.1, 1), 1: (0.6, 1)}) == 1
    assert analysis.deciding_track({0: (0.9, 1)}) == 0


def test_track_scores_group_by_track():
    scores = [FrameScore(0, 0.0, 0, 0.2), FrameScore(1, 0.1, 1, 0.9), FrameScore(2, 0.2, 0, 0.4)]
    out = analysis.track_scores(scores, "mean")
    assert out == {0: (pytest.approx(0.3), 2), 1: (pytest.approx(0.9), 1)}


def test_analyze_batches_all_crops_into_one_call_per_model(fake_pipeline):
    fake_pipeline["plan"] = {0: dict.fromkeys(range(8), 51), 1: dict.fromkeys(range(0, 8, 2), 204)}
    meso, xcep = FakeDetector(make_card()), FakeDetector(make_card("xception.t", "xception"), scale=0.5)
    report = analysis.analyze_loaded("clip.mp4", loaded(meso, xcep), frames=8)

    assert meso.calls == [12] and xcep.calls == [12]  # 8 + 4 crops, one call each
    assert report.status == "ok"
    assert len(report.faces) == 12 and len(report.crops) == 12 and len(report.tracks) == 2
    m = report.models[0]
    # Track 1 (4 of 8 frames, enough) is the most suspicious: 204/255 = 0.8 >= 0.7.
    assert m.deciding_track == 1 and m.p_fake == pytest.approx(0.8)
    assert m.verdict is Verdict.FAKE
    assert m.track_p_fake == {0: pytest.approx(0.2), 1: pytest.approx(0.8)}
    assert report.models[1].p_fake == pytest.approx(0.4) and report.models[1].verdict is Verdict.UNCERTAIN
    assert {(f.frame_index, f.track_id) for f in m.frames} == {(f.frame_index, f.track_id) for f in report.faces}
    assert all(type(f.p_fake) is float for f in m.frames)
    assert m.display_name == "Test meso4.df" and m.aggregation == "mean"
    assert set(report.timings.classify_s) == {"meso4.df", "xception.t"}
    assert report.timings.total_s >= report.timings.decode_s
    assert {"dfi", "tensorflow", "keras", "mtcnn", "opencv", "numpy"} <= set(report.versions)
    assert report.sampling.frame_indices == tuple(range(0, 80, 10))


def test_aggregation_name_changes_the_clip_score(fake_pipeline):
    fake_pipeline["plan"] = {0: {0: 0, 1: 0, 2: 255}}
    det = FakeDetector(make_card())
    mean = analysis.analyze_loaded("c.mp4", loaded(det), frames=3, aggregation="mean").models[0]
    top = analysis.analyze_loaded("c.mp4", loaded(det), frames=3, aggregation="max").models[0]
    med = analysis.analyze_loaded("c.mp4", loaded(det), frames=3, aggregation="median").models[0]
    assert (mean.p_fake, med.p_fake, top.p_fake) == (pytest.approx(1 / 3), 0.0, 1.0)
    assert top.aggregation == "max" and top.verdict is Verdict.FAKE and med.verdict is Verdict.REAL
    with pytest.raises(ValueError):
        analysis.analyze_loaded("c.mp4", loaded(det), frames=3, aggregation="mode")


def test_no_face_gives_no_face_verdicts_and_no_score(fake_pipeline):
    fake_pipeline["plan"] = {}
    det = FakeDetector(make_card())
    report = analysis.analyze_loaded("c.mp4", loaded(det), frames=8)
    assert report.status == "no_faces" and report.faces == () and report.crops == ()
    (m,) = report.models
    assert m.verdict is Verdict.NO_FACE and m.p_fake is None and m.frames == () and m.message is None
    assert det.calls == []  # nothing to score, so no made-up score either


def test_missing_weights_make_one_model_unavailable_and_the_other_runs(fake_pipeline, monkeypatch):
    cards = {"meso4.df": make_card(), "xception.t": make_card("xception.t", "xception")}

    def load_model(card_id, settings=None):
        if card_id == "xception.t":
            raise WeightsMissingError("xception.t", "x.h5", [], None)
        return FakeDetector(cards[card_id])

    monkeypatch.setattr(analysis.models, "get_card", lambda i, settings=None: cards[i])
    monkeypatch.setattr(analysis.models, "load_model", load_model)
    report = analysis.analyze("c.mp4", ["xception.t", "meso4.df"], frames=8)
    x, m = report.models
    assert x.verdict is Verdict.UNAVAILABLE and x.p_fake is None and "xception.t" in x.message
    assert m.verdict is Verdict.REAL and m.p_fake == pytest.approx(0.2)


@pytest.mark.parametrize("error", [WeightsHashError("bad hash"), CardError("weights do not fit meso4")])
def test_hash_mismatch_or_misfit_weights_are_unavailable_too(fake_pipeline, monkeypatch, error):
    card = make_card()

    def load_model(card_id, settings=None):
        raise error

    monkeypatch.setattr(analysis.models, "get_card", lambda i, settings=None: card)
    monkeypatch.setattr(analysis.models, "load_model", load_model)
    (m,) = analysis.analyze("c.mp4", ["meso4.df"], frames=8).models
    assert (m.verdict, m.p_fake, m.message) == (Verdict.UNAVAILABLE, None, error.message)


def test_unknown_model_fails_before_the_clip_is_read(fake_pipeline, monkeypatch):
    def get_card(card_id, settings=None):
        raise UnknownModelError(f"unknown model {card_id!r}: must be one of meso4.df")

    monkeypatch.setattr(analysis.models, "get_card", get_card)
    with pytest.raises(UnknownModelError, match="must be one of"):
        analysis.analyze("c.mp4", ["nope.x"], frames=8)
    assert fake_pipeline["reads"] == 0


def test_a_bad_clip_is_refused_before_models_load(monkeypatch):
    monkeypatch.setattr(analysis.models, "get_card", lambda i, settings=None: make_card())
    monkeypatch.setattr(analysis.models, "load_model", lambda *a: pytest.fail("models must not load"))

    def probe(path, settings=None):
        raise InvalidClipError("bad.mp4 is not a video")

    monkeypatch.setattr(analysis.video, "probe", probe)
    with pytest.raises(InvalidClipError):
        analysis.analyze("bad.mp4", ["meso4.df"], frames=8)


def test_invalid_scores_never_become_a_verdict(fake_pipeline):
    class NanDetector(FakeDetector):
        def predict(self, crops):
            return np.full(len(crops), np.nan)

    (m,) = analysis.analyze_loaded("c.mp4", loaded(NanDetector(make_card())), frames=8).models
    assert m.verdict is Verdict.UNAVAILABLE and m.p_fake is None and "invalid scores" in m.message


@pytest.mark.parametrize("frames", [0, 10_000])
def test_frames_out_of_range(fake_pipeline, frames):
    with pytest.raises(ValueError, match="frames must be between 1 and"):
        analysis.analyze_loaded("c.mp4", loaded(FakeDetector(make_card())), frames=frames)


def test_progress_reports_every_stage_in_order(fake_pipeline):
    seen = []
    dets = loaded(FakeDetector(make_card()), FakeDetector(make_card("xception.t", "xception")))
    analysis.analyze_loaded("c.mp4", dets, frames=8, progress=lambda s, f: seen.append((s, f)))
    assert [s for s, _ in seen] == ["reading", "faces", "model:meso4.df", "model:xception.t", "done"]
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
