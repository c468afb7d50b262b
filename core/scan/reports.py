"""A scan's stored dfi.report/1 JSON read back as a ClipReport, so the Analyze page's renderers draw it.

The JSON holds everything but the face crops' pixels (never serialised) and the per-track scores,
which are recomputed here from the per-frame scores by the same rule the analyzer used
(core.engine.verdicts), so the cards say what they said when the clip was scanned.
"""

from __future__ import annotations

from core.engine.verdicts import deciding_track, track_scores
from core.types import Box, ClipInfo, ClipReport, Face, FrameScore, ModelResult, Sampling, Timings, Verdict


def clip_report_from_dict(data: dict) -> ClipReport:
    """The ClipReport of a dfi.report/1 dict (without crops; timings keep the four stored totals).

    Raises:
        KeyError, TypeError, ValueError: ``data`` is not a dfi.report/1 object.
    """
    clip = data["clip"]
    faces = tuple(
        Face(
            int(f["frame_index"]),
            float(f["time_s"]),
            Box(*map(float, f["box"])),
            float(f["confidence"]),
            int(f["track_id"]),
        )
        for f in data["faces"]
    )
    timings = data.get("timings", {})
    return ClipReport(
        status=data["status"],
        clip=ClipInfo(
            name=clip["name"],
            sha256=clip["sha256"],
            width=int(clip["width"]),
            height=int(clip["height"]),
            fps=float(clip["fps"]),
            frame_count=int(clip["frame_count"]),
            duration_s=float(clip["duration_s"]),
        ),
        sampling=Sampling(
            requested=int(data["sampling"]["requested"]),
            frame_indices=tuple(int(i) for i in data["sampling"]["frame_indices"]),
            times_s=tuple(float(t) for t in data["sampling"]["times_s"]),
        ),
        faces=faces,
        models=tuple(_model(m) for m in data["models"]),
        timings=Timings(
            decode_s=float(timings.get("decode_s", 0.0)),
            detect_s=float(timings.get("detect_s", 0.0)),
            classify_s={"all": float(timings.get("classify_s", 0.0))},
            total_s=float(timings.get("total_s", 0.0)),
        ),
        versions=dict(data.get("versions", {})),
    )


def _model(m: dict) -> ModelResult:
    frames = tuple(
        FrameScore(int(f["frame_index"]), float(f["time_s"]), int(f["track_id"]), float(f["p_fake"]))
        for f in m.get("frames", [])
    )
    per_track = track_scores(frames, m["aggregation"]) if frames else {}
    return ModelResult(
        id=m["id"],
        family=m["family"],
        display_name=m["display_name"],
        p_fake=None if m["p_fake"] is None else float(m["p_fake"]),
        verdict=Verdict(m["verdict"]),
        threshold=float(m["threshold"]),
        band=(float(m["band"][0]), float(m["band"][1])),
        aggregation=m["aggregation"],
        seconds=float(m.get("seconds", 0.0)),
        frames=frames,
        message=m.get("message"),
        track_p_fake={t: v[0] for t, v in per_track.items()},
        deciding_track=deciding_track(per_track) if per_track else None,
    )
