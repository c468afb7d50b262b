"""Heatmaps for a whole report, and their files: overlay PNGs, an index (JSON and HTML), a zip.

``explain_report`` runs :func:`core.engine.explain.explain` once per scored detector on the crops already
in the report (no second decode or detection). The command line (``analyze --explain DIR``) writes
the files with :func:`write_explanations`; the Analyze page offers the same files as one zip
(:func:`explanations_zip`). File names: ``NNN_crop.png`` (the crop itself) and
``NNN_<card id>.png`` (its overlay), NNN being the crop's position in the report; the index names
each crop's frame, time, person, box and every detector's score.
"""

from __future__ import annotations

import html
import io
import json
import re
import time
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from core.engine import explain
from core.engine.report_queries import crop_scores, scored_models
from core.types import ClipReport

if TYPE_CHECKING:
    from models.detector import Detector

INDEX_SCHEMA = "dfi.explain/1"
# One plain sentence for every place a heatmap is shown (page, HTML index).
MEANING = (
    "Red and yellow mark the parts of the face that pushed this detector's score towards “fake” "
    "the most, blue the parts that did not; a heatmap shows what moved the score, not proof that "
    "anything was manipulated."
)


@dataclass(frozen=True, eq=False)
class ModelExplanation:
    """One detector's heatmaps for every crop of a report, in ``report.crops`` order."""

    id: str
    display_name: str
    target_layer: str
    map_size: tuple[int, int]  # the map's native resolution before resizing to each crop
    heatmaps: tuple[np.ndarray, ...]  # float32 (H, W) in [0, 1], one per crop
    seconds: float


def explain_report(report: ClipReport, detectors: Mapping[str, Detector]) -> list[ModelExplanation]:
    """Heatmaps of every detector in ``detectors`` that scored the report's crops.

    Args:
        report: an analysed clip; its ``crops`` are used as they are.
        detectors: loaded detectors by card id; models of the report without one (unavailable,
            or not given) are skipped.

    Returns:
        One ModelExplanation per scored model with a detector, in report order.
    """
    images = [crop.image for crop in report.crops]
    out = []
    for result in scored_models(report):
        detector = detectors.get(result.id)
        if detector is None or not images:
            continue
        started = time.perf_counter()
        maps = explain.explain(detector, images)
        out.append(
            ModelExplanation(
                result.id,
                result.display_name,
                explain.target_layer(detector),
                explain.map_shape(detector),
                tuple(maps),
                time.perf_counter() - started,
            )
        )
    return out


def safe_name(card_id: str) -> str:
    """A card id as a file-name part (user card ids may hold any character)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", card_id).strip("._") or "model"


def crop_file(index: int) -> str:
    return f"{index:03d}_crop.png"


def overlay_file(index: int, card_id: str) -> str:
    return f"{index:03d}_{safe_name(card_id)}.png"


def png_bytes(rgb: np.ndarray) -> bytes:
    """An RGB uint8 image as PNG bytes."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:  # cv2 refuses nothing of (H >= 1, W >= 1, 3) uint8; kept as a plain error anyway
        raise ValueError(f"could not encode an image of shape {rgb.shape} as PNG")
    return data.tobytes()


def index_dict(report: ClipReport, explanations: list[ModelExplanation]) -> dict:
    """The index of the files: clip, method, models, and per crop its files and scores."""
    scores = crop_scores(report)
    crops = []
    for i, crop in enumerate(report.crops):
        face = crop.face
        by_model = scores.get((face.frame_index, face.track_id), {})
        crops.append(
            {
                "index": i,
                "frame_index": int(face.frame_index),
                "time_s": round(float(face.time_s), 4),
                "track_id": int(face.track_id),
                "box": face.box.to_list(),
                "size": [int(crop.image.shape[0]), int(crop.image.shape[1])],
                "crop": crop_file(i),
                "overlays": {
                    e.id: {
                        "file": overlay_file(i, e.id),
                        "p_fake": None if e.id not in by_model else round(float(by_model[e.id]), 6),
                        "flat": explain.is_flat(e.heatmaps[i]),
                    }
                    for e in explanations
                },
            }
        )
    return {
        "schema": INDEX_SCHEMA,
        "clip": {"name": report.clip.name, "sha256": report.clip.sha256},
        "method": explain.METHOD,
        "meaning": MEANING,
        "flat_means": "nothing in the crop pushed this detector's score towards fake (e.g. a grey crop)",
        "models": [
            {
                "id": e.id,
                "display_name": e.display_name,
                "target_layer": e.target_layer,
                "map_size": list(e.map_size),
                "seconds": round(e.seconds, 4),
            }
            for e in explanations
        ],
        "crops": crops,
    }


def index_html(index: dict) -> str:
    """A page showing every crop beside its overlays, linking the PNGs by relative path."""
    esc = html.escape
    models = index["models"]
    head = "".join(f"<th>{esc(m['display_name'])}<br><small>{esc(m['id'])}</small></th>" for m in models)
    rows = []
    for crop in index["crops"]:
        cells = [
            f"<td>{crop['time_s']:.2f} s<br>frame {crop['frame_index']}<br>person {crop['track_id'] + 1}</td>",
            f'<td><img src="{esc(crop["crop"])}" alt="crop {crop["index"]}"></td>',
        ]
        for m in models:
            item = crop["overlays"][m["id"]]
            score = "no score" if item["p_fake"] is None else f"{100 * item['p_fake']:.0f}% fake"
            flat = " · flat" if item["flat"] else ""
            cells.append(f'<td><img src="{esc(item["file"])}" alt="{esc(m["id"])} heatmap"><br>{score}{flat}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Where the detectors looked: {esc(index['clip']['name'])}</title>"
        "<style>body{font-family:sans-serif;margin:1.5rem}td,th{padding:.3rem;text-align:center;"
        "vertical-align:top;font-size:.8rem}img{width:160px;height:160px;object-fit:contain;"
        "image-rendering:auto}</style></head><body>"
        f"<h1>Where the detectors looked: {esc(index['clip']['name'])}</h1>"
        f"<p>{esc(index['meaning'])} A flat (all blue) map: {esc(index['flat_means'])}. "
        f"Method: {esc(index['method'])}.</p>"
        f"<table><tr><th>when</th><th>crop</th>{head}</tr>{''.join(rows)}</table></body></html>\n"
    )


def explanation_files(report: ClipReport, explanations: list[ModelExplanation]) -> Iterator[tuple[str, bytes]]:
    """(file name, bytes) of every crop, overlay and the two index files."""
    for i, crop in enumerate(report.crops):
        yield crop_file(i), png_bytes(crop.image)
        for e in explanations:
            yield overlay_file(i, e.id), png_bytes(explain.overlay(crop.image, e.heatmaps[i]))
    index = index_dict(report, explanations)
    yield "index.json", (json.dumps(index, indent=2, allow_nan=False) + "\n").encode()
    yield "index.html", index_html(index).encode()


def write_explanations(report: ClipReport, explanations: list[ModelExplanation], out_dir: Path) -> list[Path]:
    """Write the files into ``out_dir`` (created); returns their paths in writing order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in explanation_files(report, explanations):
        path = out_dir / name
        path.write_bytes(data)
        written.append(path)
    return written


def explanations_zip(report: ClipReport, explanations: list[ModelExplanation]) -> bytes:
    """The same files as one zip (PNGs are stored: they are compressed already)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in explanation_files(report, explanations):
            kind = zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED
            archive.writestr(name, data, compress_type=kind)
    return buf.getvalue()
