"""The Scan page (AppTest): only folders inside the data root, a scan started in the background and
followed to its end, its results table with filters, and a picked clip's report drawn with the
Analyze page's renderers; stopping a running scan keeps what is done."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.scan import launch
from core.scan.results import ResultsFolder
from tests.scan_support import link_clips
from views.scan import state as scan_state

PAGE = Path(__file__).resolve().parent.parent / "views" / "scan" / "page.py"
TIMEOUT = 120


@pytest.fixture
def data_root(monkeypatch, tmp_path) -> Path:
    root = tmp_path / "data"
    (root / "uploads").mkdir(parents=True)
    monkeypatch.setenv("DFI_DATA_ROOT", str(root))
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DFI_RAY_ADDRESS", raising=False)
    return root


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def open_page() -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def test_a_folder_outside_the_data_root_is_refused(data_root, tmp_path):
    (tmp_path / "outside").mkdir()
    at = open_page()
    assert "uploads" in at.selectbox(key=scan_state.SCAN_FOLDER_KEY).options
    at.selectbox(key=scan_state.SCAN_FOLDER_KEY).set_value(scan_state.OTHER_FOLDER).run()
    at.text_input(key=scan_state.SCAN_FOLDER_TEXT_KEY).input("../outside").run()
    assert not at.exception
    message = texts(at.error)
    assert "../outside is outside the data folder" in message and "Traceback" not in message
    assert all(b.key != scan_state.SCAN_START_KEY for b in at.button)
    (data_root / "uploads" / "escape").symlink_to(tmp_path / "outside")
    at.text_input(key=scan_state.SCAN_FOLDER_TEXT_KEY).input("uploads/escape").run()
    assert "uploads/escape is outside the data folder" in texts(at.error)
    at.text_input(key=scan_state.SCAN_FOLDER_TEXT_KEY).input("uploads").run()
    assert not at.error and any(b.key == scan_state.SCAN_START_KEY for b in at.button)


def _wait_until_ended(out: Path, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while launch.alive(out):
        assert time.monotonic() < deadline, (out / launch.LOG_FILE).read_text()[-2000:]
        time.sleep(1)


@pytest.mark.shared
@pytest.mark.slow
def test_a_scan_runs_in_the_background_and_a_picked_row_opens_its_report(data_root, shared_data):
    link_clips(shared_data, data_root / "uploads", ["real/ffpp_youtube_c40_183.mp4", "fake/dfdc_adylbeequz.mp4"])
    (data_root / "uploads" / "fake" / "damaged.mp4").write_bytes(b"\x00" * 300)
    at = open_page()
    at.selectbox(key=scan_state.SCAN_FOLDER_KEY).set_value("uploads")
    at.multiselect(key=scan_state.SCAN_MODELS_KEY).set_value(["meso4.dfi2"])
    at.select_slider(key=scan_state.SCAN_FRAMES_KEY).set_value(8)
    at.button(key=scan_state.SCAN_START_KEY).click().run()
    assert not at.exception, at.exception
    out = Path(at.session_state[scan_state.WATCHED_KEY])
    assert launch.launch_info(out)["src"] == str(data_root / "uploads")
    _wait_until_ended(out)
    at.run()
    assert not at.exception, at.exception
    assert "Finished: 3 clips, 2 analysed, 0 without a face, 1 failed." in texts(at.success)
    table = at.dataframe[0].value
    assert sorted(table["Clip"]) == ["fake/damaged.mp4", "fake/dfdc_adylbeequz.mp4", "real/ffpp_youtube_c40_183.mp4"]
    assert set(table["Result"]) == {"analysed", "failed"}

    at.multiselect(key=scan_state.SCAN_STATUS_FILTER_KEY).set_value(["failed"]).run()
    assert list(at.dataframe[0].value["Clip"]) == ["fake/damaged.mp4"]
    at.multiselect(key=scan_state.SCAN_STATUS_FILTER_KEY).set_value([]).run()
    at.text_input(key=scan_state.SCAN_TEXT_FILTER_KEY).input("dfdc").run()
    assert list(at.dataframe[0].value["Clip"]) == ["fake/dfdc_adylbeequz.mp4"]

    row = next(r for r in ResultsFolder(out).rows() if r["path"] == "fake/dfdc_adylbeequz.mp4")
    # What the table's selection callback stores when that row is clicked.
    at.session_state[scan_state.PICKED_KEY] = (str(out), row["path"], row["sha256"])
    at.run()
    assert not at.exception, at.exception
    assert "Clip: fake/dfdc_adylbeequz.mp4" in texts(at.subheader)
    cards = [h.value for h in at.get("html") if 'class="dfi-verdict"' in h.value]
    assert len(cards) == 1 and 'data-verdict="' in cards[0]
    assert len(at.get("plotly_chart")) == 1  # the Analyze page's timeline of the stored frame scores


@pytest.mark.shared
@pytest.mark.slow
def test_stop_ends_a_running_scan_and_keeps_what_is_done(data_root, shared_data):
    link_clips(shared_data, data_root / "uploads")
    at = open_page()
    at.selectbox(key=scan_state.SCAN_FOLDER_KEY).set_value("uploads")
    at.multiselect(key=scan_state.SCAN_MODELS_KEY).set_value(["meso4.dfi2"])
    at.select_slider(key=scan_state.SCAN_FRAMES_KEY).set_value(8)
    at.button(key=scan_state.SCAN_START_KEY).click().run()
    out = Path(at.session_state[scan_state.WATCHED_KEY])
    deadline = time.monotonic() + 180
    while not ResultsFolder(out).rows():
        assert time.monotonic() < deadline and launch.alive(out), (out / launch.LOG_FILE).read_text()[-2000:]
        time.sleep(1)
    at.run()
    at.button(key=scan_state.SCAN_STOP_KEY).click().run()
    assert not at.exception, at.exception
    _wait_until_ended(out, 120)
    at.run()
    done = len(ResultsFolder(out).rows())
    assert ResultsFolder(out).state()["status"] == "stopped" and 1 <= done < 8
    assert "Stopped: the table holds the clips done so far" in texts(at.warning)
    assert len(at.dataframe[0].value) == done
