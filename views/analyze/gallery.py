"""The face-crops gallery and the clicked-frame view of the Analyze page.

Every crop the models saw, one row per person, in time order; each thumbnail is captioned with its
time and every model's score and bordered in the colour of what the models agree on. Thumbnails
are small JPEGs inlined as base64 so the whole gallery is one element (not one per crop). On
request (the toggle over the gallery, or a click on the timeline) each crop also shows every
detector's heatmap beside it (core/engine/explain.py), made once per clip and card (views/common/state.py).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence

import numpy as np
import streamlit as st
from PIL import Image

from core.engine.explain import is_flat, overlay
from core.engine.explain_export import MEANING
from core.engine.report_queries import crop_scores, crop_verdict, crops_by_track, scored_models, short_names
from core.types import ClipReport, FaceCrop
from views.analyze import state as analyze_state
from views.common.trust_words import percent
from views.figures.timeline import VERDICT_COLOURS

THUMB_PX = 112

_STYLE = """
<style>
.dfi-row { margin: 0.2rem 0 0.8rem 0; }
.dfi-person { font-weight: 600; margin-bottom: 0.3rem; }
.dfi-strip { display: flex; flex-wrap: wrap; gap: 0.5rem; }
.dfi-crop { margin: 0; width: 120px; text-align: center; font-size: 0.75rem; line-height: 1.25; }
.dfi-crop img { width: 112px; height: 112px; border: 4px solid; border-radius: 6px; display: block; }
.dfi-crop figcaption { margin-top: 0.15rem; color: #374151; }
.dfi-crop.dfi-explained { width: auto; }
.dfi-views { display: flex; gap: 4px; }
.dfi-view { width: 112px; }
.dfi-view img { width: 112px; height: 112px; }
.dfi-view img.dfi-heat-img { border: 4px solid #e5e7eb; }
.dfi-view span { display: block; font-size: 0.7rem; color: #4b5563; }
</style>
"""


def thumbnail_data_uri(image: np.ndarray, size: int = THUMB_PX) -> str:
    """A small JPEG of an RGB uint8 crop as a ``data:`` URI."""
    thumb = Image.fromarray(np.ascontiguousarray(image)).convert("RGB")
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def gallery_html(report: ClipReport, overlays: Mapping[str, Sequence[str]] | None = None) -> str:
    """The gallery as one HTML block (rows of figures), ready for ``st.html``.

    Args:
        report: the analysed clip.
        overlays: optional heatmap thumbnails (data URIs) per card id, in ``report.crops`` order;
            each crop is then shown beside one heatmap per detector.
    """
    overlays = overlays or {}
    position = {id(crop): i for i, crop in enumerate(report.crops)}
    results = scored_models(report)
    names = short_names(results)
    bands = {r.id: r.band for r in results}
    scores = crop_scores(report)
    rows = crops_by_track(report)
    parts = [_STYLE]
    for track_id, crops in rows.items():
        parts.append('<div class="dfi-row">')
        if len(rows) > 1:
            parts.append(f'<div class="dfi-person">Person {track_id + 1}</div>')
        parts.append('<div class="dfi-strip">')
        for crop in crops:
            by_model = scores.get((crop.face.frame_index, crop.face.track_id), {})
            colour = VERDICT_COLOURS[crop_verdict(by_model, bands)]
            lines = [f"{crop.face.time_s:.2f} s"] + [
                f"{html.escape(names[r.id])} {percent(by_model[r.id], short=True)}"
                if r.id in by_model
                else f"{html.escape(names[r.id])} —"
                for r in results
            ]
            alt = f"face at {crop.face.time_s:.2f} s, frame {crop.face.frame_index}"
            image = (
                f'<img class="dfi-crop-img" style="border-color:{colour}" alt="{alt}" '
                f'src="{thumbnail_data_uri(crop.image)}">'
            )
            if overlays:
                views = [f'<div class="dfi-view">{image}<span>face</span></div>']
                for r in results:
                    if r.id in overlays:
                        name = html.escape(names[r.id])
                        views.append(
                            f'<div class="dfi-view"><img class="dfi-heat-img" data-model="{html.escape(r.id)}" '
                            f'alt="where {name} looked, {alt}" src="{overlays[r.id][position[id(crop)]]}">'
                            f"<span>where {name} looked</span></div>"
                        )
                image = f'<div class="dfi-views">{"".join(views)}</div>'
            extra = " dfi-explained" if overlays else ""
            parts.append(
                f'<figure class="dfi-crop{extra}">{image}<figcaption>{"<br>".join(lines)}</figcaption></figure>'
            )
        parts.append("</div></div>")
    return "".join(parts)


def render_gallery(report: ClipReport, key: tuple | None = None) -> None:
    """The gallery with a one-line legend, and (given the report's request key) the heatmaps toggle."""
    if not report.crops:
        return
    shown = key is not None and st.toggle(
        "Show where each detector looked",
        key=analyze_state.HEATMAPS_TOGGLE_KEY,
        help="A heatmap per face and detector: which parts of the face moved its score.",
    )
    st.caption(
        "Border colour: red = the detectors agree this crop looks fake, green = they agree it "
        "looks real, amber = unsure or they disagree. Percentages are each detector's chance of fake."
    )
    if not shown:
        st.html(gallery_html(report))
        return
    explanations = _explanations(report, key)
    if explanations:
        st.caption(f"Heatmaps: {MEANING}")
    thumbs = {
        e.id: [thumbnail_data_uri(overlay(c.image, m)) for c, m in zip(report.crops, e.heatmaps)] for e in explanations
    }
    st.html(gallery_html(report, thumbs))
    if explanations:
        stem = report.clip.name.rsplit(".", 1)[0]
        st.download_button(
            "Heatmaps (ZIP)",
            analyze_state.heatmaps_zip(key, report, explanations),
            f"{stem}.heatmaps.zip",
            "application/zip",
            key=analyze_state.HEATMAPS_ZIP_KEY,
            on_click="ignore",
            icon=":material/download:",
            help="Every crop with one heatmap overlay per detector, as PNGs, with an index.",
        )


def _explanations(report: ClipReport, key: tuple) -> list:
    """Every scored detector's heatmaps (computed once per clip and card), failures said plainly."""
    with st.spinner("Working out where each detector looked…"):
        explanations, failed = analyze_state.heatmaps(key, report)
    names = short_names(scored_models(report))
    for card_id, message in failed.items():
        st.warning(f"No heatmaps from {names.get(card_id, card_id)}: {message}", icon=":material/info:")
    return explanations


def render_selected_crop(report: ClipReport, crop: FaceCrop, key: tuple | None = None) -> None:
    """The crop behind a clicked timeline point, large, with every model's score, and (given the
    report's request key) every model's heatmap."""
    scores = crop_scores(report).get((crop.face.frame_index, crop.face.track_id), {})
    names = short_names(scored_models(report))
    words = ", ".join(f"{names[m]} {percent(p, short=True)}" for m, p in scores.items()) or "no scores"
    caption = (
        f"{crop.face.time_s:.2f} s (frame {crop.face.frame_index}, person "
        f"{crop.face.track_id + 1}): {words} chance of fake"
    )
    if key is None:
        st.image(crop.image, width=224, caption=caption)
        return
    columns = st.columns(1 + len(scores), gap="small")
    columns[0].image(crop.image, width=224, caption=caption)
    explanations = _explanations(report, key)
    face = crop.face
    index = next(
        i
        for i, c in enumerate(report.crops)
        if (c.face.frame_index, c.face.track_id) == (face.frame_index, face.track_id)
    )
    for column, item in zip(columns[1:], explanations):
        heat = item.heatmaps[index]
        flat = " Flat: nothing here pushed it towards fake." if is_flat(heat) else ""
        column.image(overlay(crop.image, heat), width=224, caption=f"Where {names.get(item.id, item.id)} looked.{flat}")
    if explanations and not analyze_state.heatmaps_shown():  # else the gallery below says it
        st.caption(f"Heatmaps: {MEANING}")
