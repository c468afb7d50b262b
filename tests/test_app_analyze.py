"""AppTest for the Analyze page (app.py → views/analyze/page.py), widgets addressed by key.

Paths covered: the start page, the sample clip (verdict cards, timeline, gallery), the same clip
again from the server cache, a broken upload, a clip with no face, one model's weights missing,
and an unexpected failure inside the engine. Every test checks that no exception reached the page.
The sample-clip tests need the MesoNet authors' weights from ../shared/data.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from views.analyze import state as analyze_state

APP = Path(__file__).resolve().parent.parent / "app.py"
TIMEOUT = 240  # seconds per script run: the first one builds the models on a busy 2-core CPU


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Fresh Streamlit caches, and weights found only where each test says."""
    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.setenv("DFI_PROJECT_WEIGHTS_DIR", str(tmp_path / "no-project-weights"))
    monkeypatch.delenv("DFI_WEIGHTS_DIR", raising=False)
    yield
    st.cache_data.clear()


@pytest.fixture
def with_mesonet(monkeypatch, mesonet_weights_dir):
    monkeypatch.setenv("DFI_WEIGHTS_DIR", str(mesonet_weights_dir))
    return mesonet_weights_dir


def start() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    return at


def html_bodies(at: AppTest) -> list[str]:
    return [h.value for h in at.get("html")]


def zip_button_url(at: AppTest) -> str:
    """The media address of the "Heatmaps (ZIP)" button (it fails when the button is missing or
    hands out a deferred download instead)."""
    (button,) = [b for b in at.get("download_button") if b.label == "Heatmaps (ZIP)"]
    assert not button.proto.HasField("deferred_file_id")
    assert button.proto.url.endswith(".zip"), button.proto.url
    return button.proto.url


def verdict_cards(at: AppTest) -> dict[str, str]:
    """{card id: verdict} from the rendered verdict cards."""
    cards = {}
    for body in html_bodies(at):
        if 'class="dfi-verdict"' in body:
            model = body.split('data-model="', 1)[1].split('"', 1)[0]
            cards[model] = body.split('data-verdict="', 1)[1].split('"', 1)[0]
    return cards


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def no_face_clip(path: Path) -> Path:
    """A 2 s clip of a drifting colour gradient: a valid video with nothing face-like in it."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
    ramp = np.linspace(0, 255, 160, dtype=np.float32)
    for i in range(20):
        row = np.roll(ramp, 4 * i).astype(np.uint8)
        frame = np.stack([np.tile(row, (120, 1))] * 3, axis=-1)
        frame[..., 1] = 255 - frame[..., 1]
        writer.write(frame)
    writer.release()
    return path


def test_start_page_offers_upload_sample_and_options():
    at = start()
    allowed = set(at.file_uploader(key=analyze_state.UPLOAD_KEY).allowed_type)
    assert {f".{t}" for t in analyze_state.UPLOAD_TYPES} <= allowed
    assert at.button(key=analyze_state.SAMPLE_BUTTON_KEY).label == "Try a sample clip"
    assert at.select_slider(key=analyze_state.FRAMES_KEY).value == 32
    assert at.multiselect(key=analyze_state.MODELS_KEY).value  # one default card per family
    assert "Try a sample clip" in texts(at.info)
    assert "Detectors" in texts(at.sidebar.subheader)
    # With no weights anywhere, every card is listed as unavailable, each with its reason.
    assert "Not available here" in texts(at.sidebar.caption)
    listed = texts(at.sidebar.markdown)
    assert "`meso4.df` · mesonet · its weights file (Meso4_DF.h5) is not installed" in listed
    assert "`xception.dfi2` · xception · " in listed


@pytest.mark.shared
@pytest.mark.slow
def test_sample_clip_shows_verdicts_timeline_and_gallery(with_mesonet):
    at = start()
    at.button(key=analyze_state.SAMPLE_BUTTON_KEY).click().run()
    assert not at.exception
    assert not at.error, texts(at.error)
    cards = verdict_cards(at)
    meso = [m for m in cards if m.startswith("meso")]
    xcep = [m for m in cards if m.startswith("xception")]
    assert len(meso) == 1 and cards[meso[0]] in {"FAKE", "REAL", "UNCERTAIN"}
    assert len(xcep) == 1 and cards[xcep[0]] == "UNAVAILABLE"  # no Xception weights yet, by design
    assert "could not run here" in texts(at.info)
    assert len(at.get("plotly_chart")) == 1
    gallery = [b for b in html_bodies(at) if "dfi-crop-img" in b]
    assert len(gallery) == 1 and gallery[0].count('class="dfi-crop-img"') >= 8
    summary = [b for b in html_bodies(at) if "dfi-summary" in b]
    assert summary and "detector" in summary[0].lower()
    labels = {b.label for b in at.get("download_button")}
    assert {"Report (JSON)", "Scores per frame (CSV)"} <= labels
    assert "astronaut_zoom.mp4" in texts(at.caption)
    at.button(key=analyze_state.ANNOTATE_BUTTON_KEY).click().run()
    assert not at.exception and not at.error
    video = [b for b in at.get("download_button") if b.label == "Annotated video (MP4)"]
    assert len(video) == 1

    # A second session with the same clip gets the report from the server-wide cache.
    again = start()
    t0 = time.perf_counter()
    again.button(key=analyze_state.SAMPLE_BUTTON_KEY).click().run()
    cached_s = time.perf_counter() - t0
    assert not again.exception
    assert "reused from an earlier analysis" in texts(again.caption)
    assert verdict_cards(again) == cards
    assert cached_s < 1.0, f"cache hit took {cached_s:.2f} s"

    # The same bytes uploaded under another name: still a cache hit, shown under the user's name.
    third = start()
    third.file_uploader(key=analyze_state.UPLOAD_KEY).set_value(
        ("my copy.mp4", analyze_state.SAMPLE_CLIP.read_bytes(), "video/mp4")
    ).run()
    assert not third.exception
    assert "my copy.mp4" in texts(third.caption) and "reused from an earlier analysis" in texts(third.caption)


@pytest.mark.shared
@pytest.mark.slow
def test_one_model_missing_still_runs_the_other(with_mesonet, monkeypatch, tmp_path):
    only_df = tmp_path / "weights"
    only_df.mkdir()
    (only_df / "Meso4_DF.h5").symlink_to(with_mesonet / "Meso4_DF.h5")
    monkeypatch.setenv("DFI_WEIGHTS_DIR", str(only_df))
    at = start()
    at.multiselect(key=analyze_state.MODELS_KEY).set_value(["meso4.df", "meso4.f2f"])
    at.button(key=analyze_state.SAMPLE_BUTTON_KEY).click().run()
    assert not at.exception
    cards = verdict_cards(at)
    assert cards["meso4.f2f"] == "UNAVAILABLE"
    assert cards["meso4.df"] in {"FAKE", "REAL", "UNCERTAIN"}
    assert "Meso4_F2F.h5" in texts(at.caption)  # the card says which file it looked for
    assert "could not run here" in texts(at.info)
    assert len(at.get("plotly_chart")) == 1


def test_broken_upload_shows_a_plain_error():
    at = start()
    at.file_uploader(key=analyze_state.UPLOAD_KEY).set_value(("broken.mp4", os.urandom(4096), "video/mp4")).run()
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert message.startswith("broken.mp4 ")  # names the user's file, not the temp copy
    assert "Traceback" not in message and ". Try another file" in message
    assert not verdict_cards(at) and not at.get("plotly_chart")  # no made-up result


def test_clip_without_a_face_says_so(tmp_path):
    clip = no_face_clip(tmp_path / "gradient.mp4")
    at = start()
    at.file_uploader(key=analyze_state.UPLOAD_KEY).set_value(("gradient.mp4", clip.read_bytes(), "video/mp4")).run()
    assert not at.exception
    assert not at.error, texts(at.error)
    assert "No face was found" in texts(at.warning)
    assert set(verdict_cards(at).values()) <= {"NO_FACE", "UNAVAILABLE"}
    assert not at.get("plotly_chart")


def test_unexpected_engine_failure_is_a_plain_message(monkeypatch, tmp_path):
    def explode(*args, **kwargs):
        raise RuntimeError("internal detail that must not be shown")

    monkeypatch.setattr(analyze_state, "analyze", explode)
    clip = no_face_clip(tmp_path / "any.mp4")
    at = start()
    at.file_uploader(key=analyze_state.UPLOAD_KEY).set_value(("any.mp4", clip.read_bytes(), "video/mp4")).run()
    assert not at.exception
    assert "Something went wrong" in texts(at.error)
    assert "internal detail" not in texts(at.error)


def test_uploads_are_written_to_a_private_temp_file_and_removed():
    seen = {}
    with analyze_state.clip_file(analyze_state.ClipSource(name="phone clip.MOV", data=b"abc")) as path:
        seen["path"], seen["mode"] = path, path.stat().st_mode & 0o777
        seen["folder_mode"] = path.parent.stat().st_mode & 0o777
        assert path.read_bytes() == b"abc" and path.name == "phone clip.mov"
    assert seen["mode"] == 0o600 and seen["folder_mode"] == 0o700
    assert not seen["path"].exists() and not seen["path"].parent.exists()
    with (
        pytest.raises(RuntimeError),
        analyze_state.clip_file(analyze_state.ClipSource(name="../../x.exe", data=b"abc")) as path,
    ):
        assert path.name == "x.mp4"  # no folders, and an unexpected suffix is never kept
        raise RuntimeError
    assert not path.parent.exists()


def test_a_broken_model_card_is_a_plain_message(tmp_path):
    cards = tmp_path / "user-cache" / "cards"  # DFI_CACHE_DIR/cards, set by _isolated
    cards.mkdir(parents=True)
    (cards / "broken.json").write_text("{not json")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "could not be read" in texts(at.sidebar.error)
    assert at.error and "Traceback" not in texts(at.error)


def test_no_detector_installed_says_so_without_an_empty_chart():
    # A fresh clone without any weight files: the faces are still shown, but no chart is drawn and
    # no card claims that "the other detectors" have a verdict.
    at = start()
    at.button(key=analyze_state.SAMPLE_BUTTON_KEY).click().run()
    assert not at.exception
    assert set(verdict_cards(at).values()) == {"UNAVAILABLE"}
    assert not at.get("plotly_chart")
    assert "no timeline to draw" in texts(at.info)
    assert "still stand" not in texts(at.markdown)


def test_an_upload_is_hashed_once_not_on_every_rerun(monkeypatch, tmp_path):
    clip = no_face_clip(tmp_path / "gradient.mp4")
    data = clip.read_bytes()
    real_sha256, calls = analyze_state.hashlib.sha256, []

    def counting_sha256(payload=b"", *args, **kwargs):
        if payload == data:
            calls.append(1)
        return real_sha256(payload, *args, **kwargs)

    monkeypatch.setattr(analyze_state.hashlib, "sha256", counting_sha256)
    at = start()
    at.file_uploader(key=analyze_state.UPLOAD_KEY).set_value(("gradient.mp4", data, "video/mp4")).run()
    at.run()  # a rerun, as after any click
    assert not at.exception
    assert len(calls) == 1


def test_card_metrics_in_words_with_the_auc_interval():
    from views.common.trust_words import metrics_sentence

    words = metrics_sentence(
        {
            "video_auc": 0.8123,
            "video_auc_ci95": [0.61, 0.95],
            "n_real": 8,
            "n_fake": 16,
            "accuracy": 0.75,
            "eer": None,
            "protocol": "held-out clips",
        }
    )
    assert words.startswith("video AUC 0.81 on 8 real and 16 fake clips, 95% sure it lies between 0.61 and 0.95")
    assert "accuracy 0.750" in words and "eer" not in words and "held-out" not in words
    assert metrics_sentence({"protocol": "none"}) == "not measured yet."


@pytest.mark.shared
@pytest.mark.slow
def test_heatmaps_toggle_shows_overlays_for_both_detectors(with_mesonet, monkeypatch, shared_data):
    """A real shared clip with both families (shipped xception.dfi2, the authors' meso4.df): the
    heatmaps appear only when asked, one per crop and detector, with what the colours mean."""
    monkeypatch.delenv("DFI_PROJECT_WEIGHTS_DIR")  # the shipped weights in models/weights/
    clip = shared_data / "clips" / "real" / "ffpp_youtube_c40_183.mp4"
    at = start()
    at.select_slider(key=analyze_state.FRAMES_KEY).set_value(8)
    at.multiselect(key=analyze_state.MODELS_KEY).set_value(["xception.dfi2", "meso4.df"])
    at.file_uploader(key=analyze_state.UPLOAD_KEY).set_value((clip.name, clip.read_bytes(), "video/mp4")).run()
    assert not at.exception and not at.error, texts(at.error)
    assert set(verdict_cards(at)) == {"xception.dfi2", "meso4.df"}
    assert at.toggle(key=analyze_state.HEATMAPS_TOGGLE_KEY).value is False
    gallery = [b for b in html_bodies(at) if "dfi-crop-img" in b]
    assert len(gallery) == 1 and 'class="dfi-heat-img"' not in gallery[0]  # never on the default path
    crops = gallery[0].count('class="dfi-crop-img"')
    assert crops >= 6

    at.toggle(key=analyze_state.HEATMAPS_TOGGLE_KEY).set_value(True).run()
    assert not at.exception and not at.error and not at.warning, texts(at.warning)
    gallery = [b for b in html_bodies(at) if "dfi-crop-img" in b]
    assert len(gallery) == 1
    for card_id in ("xception.dfi2", "meso4.df"):
        overlays = gallery[0].count(f'class="dfi-heat-img" data-model="{card_id}"')
        assert overlays == crops, f"{card_id}: {overlays} heatmaps for {crops} crops"
    assert gallery[0].count('src="data:image/jpeg;base64,') == 3 * crops
    assert "not proof that anything was manipulated" in texts(at.caption)
    zip_url = zip_button_url(at)
    # The zip is served under a name its bytes decide, so a rerun (a timeline dot clicked) keeps
    # the link a click may be on; a deferred download's id was revoked by every rerun.
    at.run()
    assert not at.exception and zip_button_url(at) == zip_url

    # A second session on the same clip gets the heatmaps from the server-wide cache.
    again = start()
    again.select_slider(key=analyze_state.FRAMES_KEY).set_value(8)
    again.multiselect(key=analyze_state.MODELS_KEY).set_value(["xception.dfi2", "meso4.df"])
    again.file_uploader(key=analyze_state.UPLOAD_KEY).set_value((clip.name, clip.read_bytes(), "video/mp4")).run()
    t0 = time.perf_counter()
    again.toggle(key=analyze_state.HEATMAPS_TOGGLE_KEY).set_value(True).run()
    assert not again.exception
    assert [b for b in html_bodies(again) if "dfi-crop-img" in b] == gallery
    assert time.perf_counter() - t0 < 5.0
