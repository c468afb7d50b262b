"""The face-crops gallery and the clicked-frame view of the Analyze page.

Every crop the models saw, one row per person, in time order; each thumbnail is captioned with its
time and every model's score and bordered in the colour of what the models agree on. Thumbnails
are small JPEGs inlined as base64 so the whole gallery is one element (not one per crop).
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import streamlit as st
from PIL import Image

from core.charts import VERDICT_COLOURS, crop_scores, crop_verdict, crops_by_track, scored_models, short_names
from core.types import ClipReport, FaceCrop
from views._verdicts import percent

THUMB_PX = 112

_STYLE = """
<style>
.dfi-row { margin: 0.2rem 0 0.8rem 0; }
.dfi-person { font-weight: 600; margin-bottom: 0.3rem; }
.dfi-strip { display: flex; flex-wrap: wrap; gap: 0.5rem; }
.dfi-crop { margin: 0; width: 120px; text-align: center; font-size: 0.75rem; line-height: 1.25; }
.dfi-crop img { width: 112px; height: 112px; border: 4px solid; border-radius: 6px; display: block; }
.dfi-crop figcaption { margin-top: 0.15rem; color: #374151; }
</style>
"""


def thumbnail_data_uri(image: np.ndarray, size: int = THUMB_PX) -> str:
    """A small JPEG of an RGB uint8 crop as a ``data:`` URI."""
    thumb = Image.fromarray(np.ascontiguousarray(image)).convert("RGB")
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def gallery_html(report: ClipReport) -> str:
    """The gallery as one HTML block (rows of figures), ready for ``st.html``."""
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
                f"{html.escape(names[r.id])} {percent(by_model[r.id], short=True)}" if r.id in by_model else
                f"{html.escape(names[r.id])} —" for r in results
            ]
            alt = f"face at {crop.face.time_s:.2f} s, frame {crop.face.frame_index}"
            parts.append(
                f'<figure class="dfi-crop"><img class="dfi-crop-img" style="border-color:{colour}" '
                f'alt="{alt}" src="{thumbnail_data_uri(crop.image)}">'
                f'<figcaption>{"<br>".join(lines)}</figcaption></figure>'
            )
        parts.append("</div></div>")
    return "".join(parts)


def render_gallery(report: ClipReport) -> None:
    """The gallery with a one-line legend for the border colours."""
    if not report.crops:
        return
    st.caption(
        "Border colour: red = the detectors agree this crop looks fake, green = they agree it "
        "looks real, amber = unsure or they disagree. Percentages are each detector's chance of fake."
    )
    st.html(gallery_html(report))


def render_selected_crop(report: ClipReport, crop: FaceCrop) -> None:
    """The crop behind a clicked timeline point, large, with every model's score."""
    scores = crop_scores(report).get((crop.face.frame_index, crop.face.track_id), {})
    names = short_names(scored_models(report))
    words = ", ".join(f"{names[m]} {percent(p, short=True)}" for m, p in scores.items()) or "no scores"
    st.image(
        crop.image,
        width=224,
        caption=f"{crop.face.time_s:.2f} s (frame {crop.face.frame_index}, person "
                f"{crop.face.track_id + 1}): {words} chance of fake",
    )
