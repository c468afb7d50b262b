"""AppTest for the Compare page (views/compare/page.py), with the slow analysis faked (tests/compare_fakes.py).

Covered: the metrics side by side, the charts, the per-clip table with the clips that were not
scored, the server-wide cache keyed by folder contents and models, a run stopped between clips, a
folder outside the data root, too few models, an unavailable model, and (with the real MesoNet
weights) a clip picked in the scatter opening its full report.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.compare_fakes import FAKE, REAL, SCORES, FakeAnalysis, make_labelled_folder
from views.compare import state as compare_state

PAGE = Path(__file__).resolve().parent.parent / "views" / "compare" / "page.py"
TIMEOUT = 240
MODELS = ["meso4.df", "mesoinception4.df"]


@pytest.fixture(autouse=True)
def data_root(monkeypatch, tmp_path) -> Path:
    """A data root holding the labelled folder ``set``; caches cleared, weights nowhere."""
    st.cache_data.clear()
    root = tmp_path / "data"
    make_labelled_folder(root, "set", REAL, FAKE)
    monkeypatch.setenv("DFI_DATA_ROOT", str(root))
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.setenv("DFI_PROJECT_WEIGHTS_DIR", str(tmp_path / "no-project-weights"))
    monkeypatch.delenv("DFI_WEIGHTS_DIR", raising=False)
    yield root
    st.cache_data.clear()


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def open_page(model_ids=MODELS, folder: str = "set") -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    assert not at.exception
    at.multiselect(key=compare_state.COMPARE_MODELS_KEY).set_value(model_ids)
    at.selectbox(key=compare_state.COMPARE_FOLDER_KEY).set_value(folder)
    at.run()
    assert not at.exception
    return at


def compare(at: AppTest) -> AppTest:
    at.button(key=compare_state.COMPARE_RUN_KEY).click().run()
    assert not at.exception, at.exception
    return at


def test_comparison_shows_metrics_charts_clips_and_downloads(monkeypatch):
    fake = FakeAnalysis(SCORES).install(monkeypatch)
    at = open_page()
    assert "**8 clips** (4 real, 4 fake)" in texts(at.markdown)
    compare(at)
    assert len(fake.analysed) == 8
    table = at.table[0].value  # one row per measure, one column per model
    auc = table.loc[next(m for m in table.index if m.startswith("Video AUC"))]
    assert (auc["meso4.df"], auc["mesoinception4.df"]) == ("1.000", "0.778")
    assert len(at.get("plotly_chart")) == 3  # ROC, calibration, A against B
    skipped = texts(at.warning)
    assert "2 clips were not scored" in skipped and "real/r_noface.mp4" in skipped and "fake/f_broken.mp4" in skipped
    clips = at.dataframe[0].value
    assert len(clips) == 8 and set(clips["Result"]) == {"analysed", "no face found", "failed"}
    assert "(2 here)" in texts(at.caption)  # r2 and f1: the models disagree
    assert {d.label for d in at.get("download_button")} == {"Comparison (JSON)", "Scores per clip (CSV)"}
    result = at.session_state[compare_state.COMPARE_RESULT_KEY][1]
    assert result["schema"] == "dfi.evaluation/1" and result["counts"]["errors"] == 1


def test_the_same_folder_and_models_come_from_the_cache_until_a_clip_changes(monkeypatch, data_root):
    fake = FakeAnalysis(SCORES).install(monkeypatch)
    compare(open_page())
    again = open_page()  # a new session on the same server
    assert "reused from an earlier comparison" in texts(again.caption)
    assert len(again.table) == 1 and len(fake.analysed) == 8
    clip = data_root / "set" / "real" / "r1.mp4"
    stat = clip.stat()
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = open_page()
    assert len(changed.table) == 0 and any(b.key == compare_state.COMPARE_RUN_KEY for b in changed.button)


def test_a_stopped_comparison_says_so_and_keeps_nothing(monkeypatch):
    FakeAnalysis(SCORES, stop_after=2).install(monkeypatch)
    at = open_page()
    at.button(key=compare_state.COMPARE_RUN_KEY).click().run()  # stopped by the (faked) click between clips
    at.run()
    assert not at.exception
    assert "The comparison was stopped after 2 of 8 clips; nothing was kept." in texts(at.warning)
    assert len(at.table) == 0 and any(b.key == compare_state.COMPARE_RUN_KEY for b in at.button)
    at.run()
    assert "stopped" not in texts(at.warning)  # said once


def test_a_folder_outside_the_data_root_is_refused_plainly(monkeypatch, tmp_path):
    make_labelled_folder(tmp_path, "outside", ["a"], ["b"])
    at = open_page(folder="Another folder inside the data folder…")
    at.text_input(key=compare_state.COMPARE_FOLDER_TEXT_KEY).input("../outside").run()
    assert not at.exception
    message = texts(at.error)
    assert "../outside is outside the data folder" in message and "Traceback" not in message
    at.text_input(key=compare_state.COMPARE_FOLDER_TEXT_KEY).input("set").run()
    assert not at.error and "**8 clips**" in texts(at.markdown)


def test_fewer_than_two_models_asks_for_another():
    at = open_page(model_ids=["meso4.df"])
    assert "Pick at least two detectors" in texts(at.info)
    assert all(b.key != compare_state.COMPARE_RUN_KEY for b in at.button)


def test_an_unavailable_model_is_shown_as_such(monkeypatch):
    FakeAnalysis(SCORES, unavailable={"mesoinception4.df": "its weights file is not installed"}).install(monkeypatch)
    at = compare(open_page())
    assert "**mesoinception4.df** could not run: its weights file is not installed" in texts(at.warning)
    assert set(at.table[0].value["mesoinception4.df"]) == {"unavailable"}
    assert "At least two detectors must have scored clips" in texts(at.info)


@pytest.mark.shared
@pytest.mark.slow
def test_a_picked_clip_opens_its_full_report(monkeypatch, data_root, shared_data, mesonet_weights_dir):
    subset = data_root / "subset"
    for label, name in (("real", "ffpp_youtube_c40_183.mp4"), ("fake", "ffpp_Deepfakes_c40_183_253.mp4")):
        (subset / label).mkdir(parents=True)
        (subset / label / name).symlink_to(shared_data / "clips" / label / name)
    monkeypatch.setenv("DFI_WEIGHTS_DIR", str(mesonet_weights_dir))
    FakeAnalysis(
        {"ffpp_youtube_c40_183": dict.fromkeys(MODELS, 0.2), "ffpp_Deepfakes_c40_183_253": dict.fromkeys(MODELS, 0.7)}
    ).install(monkeypatch)
    at = open_page(folder="subset")
    at.select_slider(key=compare_state.COMPARE_FRAMES_KEY).set_value(8)
    compare(at.run())
    key = at.session_state[compare_state.COMPARE_RESULT_KEY][0]
    # What the scatter's (or the table's) selection callback stores when a dot is clicked.
    at.session_state[compare_state.COMPARE_CLIP_KEY] = (key, "fake/ffpp_Deepfakes_c40_183_253.mp4")
    at.run()
    assert not at.exception, at.exception
    assert "Clip: fake/ffpp_Deepfakes_c40_183_253.mp4" in texts(at.subheader)
    cards = [h.value for h in at.get("html") if 'class="dfi-verdict"' in h.value]
    assert len(cards) == 2 and all('data-verdict="' in c for c in cards)
    assert sum('data-verdict="UNAVAILABLE"' in c for c in cards) == 0
