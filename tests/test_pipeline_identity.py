"""The overlapped, streaming analysis gives the same report as the plain sequential one.

The reference below is the pipeline as it was before decoding moved to a thread and frames began
to be let go early: decode every sampled frame into a list, run MTCNN's first pass on the whole
list in batches of DETECT_BATCH same-size frames, the retries and the equalised pass on the frames
still missed, track, cut native crops from the full frames, and score them with one ``predict``
per model. Written out here, on the same primitives (``faces._prepare``, ``faces.detect_batch``,
``assign_tracks``, ``crop_square``), so that the test checks the orchestration: batching, which
frames are retried, the order of faces, and that scores come from the native crops.

Same frames, boxes, confidences, track ids and crops (crops above KEEP_CROP_SIDE compared with the
native crop shrunk to it, which is what the report keeps); scores equal within 1e-6 (the same
input arrays go through the same batched call, so in practice they are bit-identical).
"""

from __future__ import annotations

import numpy as np
import pytest

from core.engine import analysis, face_scan, faces, video
from core.engine.tracking import assign_tracks
from core.settings import get_settings
from models.detector import resize_crop

SCORE_TOLERANCE = 1e-6
# A DFDC face-crop clip whose first pass misses 12 of 32 frames; the retries find faces in 11.
RETRIED = "facecrop-clips/fake/dfdc_facecrop_acdkfksyev_0_0.mp4"


def reference_boxes(images, settings):
    """The whole-clip detect_boxes: every frame in memory, passes over index lists."""

    def one_pass(indices, pad, angle, equalise=False):
        found = {i: [] for i in indices}
        by_shape = {}
        for i in indices:
            by_shape.setdefault(images[i].shape, []).append(i)
        for shape, members in by_shape.items():
            for start in range(0, len(members), faces.DETECT_BATCH):
                chunk = members[start : start + faces.DETECT_BATCH]
                prepared = [faces._prepare(images[i], pad, settings.detect_max_side, angle, equalise) for i in chunk]
                for i, boxes in zip(chunk, faces.detect_batch(prepared, shape, settings)):
                    found[i] = boxes
        return found

    found = one_pass(range(len(images)), settings.detect_pad, 0.0)
    missed = [i for i in range(len(images)) if not found[i]]
    if 2 * len(missed) <= len(images):
        for pad, angle in faces.RETRY_PASSES:
            pad = settings.detect_pad if pad is None else pad
            if missed:
                found.update({i: b for i, b in one_pass(missed, pad, angle).items() if b})
            missed = [i for i in missed if not found[i]]
    if missed:
        found.update({i: b for i, b in one_pass(missed, settings.detect_pad, 0.0, equalise=True).items() if b})
    return [sorted(found[i], key=lambda item: -item[1]) for i in range(len(images))]


def reference_report(clip, loaded, frames, settings):
    """(frame indices and times, faces, native crops, {card id: scores}) the sequential way."""
    info = video.probe(clip, settings)
    sampled = video.sample_frames(clip, frames, info, settings)
    found = reference_boxes([f.image for f in sampled], settings)
    ids = assign_tracks([[box for box, _ in boxes] for boxes in found])
    rows, crops = [], []
    for frame, boxes, track_ids in zip(sampled, found, ids):
        for (box, confidence), track_id in sorted(zip(boxes, track_ids), key=lambda item: item[1]):
            rows.append((frame.index, frame.time_s, box, confidence, track_id))
            crops.append(faces.crop_square(frame.image, box, settings.crop_margin))
    scores = {
        item.card.id: np.asarray(item.detector.predict(crops), dtype=np.float64).reshape(-1) if crops else np.zeros(0)
        for item in loaded
    }
    return [(f.index, f.time_s) for f in sampled], rows, crops, scores


def assert_same(clip, loaded, frames=32):
    settings = get_settings()
    report = analysis.analyze_loaded(clip, loaded, frames, settings)
    sampled, rows, crops, scores = reference_report(clip, loaded, frames, settings)
    assert list(zip(report.sampling.frame_indices, report.sampling.times_s)) == sampled
    assert [(f.frame_index, f.time_s, f.box, f.confidence, f.track_id) for f in report.faces] == rows
    assert len(report.crops) == len(crops)
    for kept, native in zip(report.crops, crops):
        expected = native if max(native.shape[:2]) <= analysis.KEEP_CROP_SIDE else resize_crop(native, 256)
        np.testing.assert_array_equal(kept.image, expected)
    for result in report.models:
        got = np.array([f.p_fake for f in result.frames])
        np.testing.assert_allclose(got, scores[result.id], rtol=0, atol=SCORE_TOLERANCE)
    return report


@pytest.fixture(scope="module")
def two_sizes():
    """The shipped detectors: Xception (160 px input) and Meso4 (256 px)."""
    return analysis.load_models(["xception.dfi2", "meso4.dfi2"], get_settings())


@pytest.mark.parametrize("name", ["face", "two_faces", "no_face", "portrait", "no_duration_webm"])
def test_synthetic_clips_give_the_sequential_report(synthetic_clips, two_sizes, name):
    assert_same(synthetic_clips[name], two_sizes, frames=16)


def test_more_crops_than_one_pass_give_the_same_scores_within_tolerance(synthetic_clips, two_sizes):
    # 48 crops: two passes of SCORE_BATCH per model, against one pass of all 48 in the reference.
    report = assert_same(synthetic_clips["face"], two_sizes, frames=48)
    assert len(report.crops) > analysis.SCORE_BATCH


@pytest.mark.parametrize(
    "relative",
    [
        "clips/real/dfdc_lynaeydofd.mp4",  # 1080p, a face in every frame
        "clips/real/ffpp_actors_c40_18__kitchen_pan.mp4",  # 1080p, frames without a face
        RETRIED,
    ],
)
def test_shared_clips_give_the_sequential_report(shared_data, two_sizes, relative):
    assert_same(shared_data / relative, two_sizes)


def test_frames_decoded_again_when_the_missed_frames_budget_is_spent(shared_data, two_sizes, monkeypatch):
    # No budget: every frame the first pass missed is let go and decoded again if a retry finds
    # a face in it; the crops must still be those of the full frames.
    monkeypatch.setattr(face_scan, "MISSED_FRAMES_BYTES", 0)
    again = []
    real = video.iter_sampled

    def counting(*args, only=None, **kwargs):
        if only is not None:
            again.extend(only)
        return real(*args, only=only, **kwargs)

    monkeypatch.setattr(analysis.video, "iter_sampled", counting)
    report = assert_same(shared_data / RETRIED, two_sizes)
    assert len(again) == 11 and len(report.sampling.frame_indices) == 32
