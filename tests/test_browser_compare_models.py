"""End to end in a real browser: the Compare and Models pages, driven by Playwright through Debian's Chromium.

The server runs with a data root made in tmp: a folder ``subset`` of symlinks to a few real and fake
clips of ../shared/data/clips, and the MesoNet authors' weights from ../shared/data. On the Compare
page a comparison of the default detectors is started and stopped, then run to the end: the metrics
table and the ROC chart appear, and a dot of the scatter opens that clip's report. On the Models page
the authors' ``Meso4_DF.h5`` is uploaded as new weights, and the Analyze page then offers it.

Screenshots go to $DFI_SCREENSHOTS when set, else to pytest's tmp folder.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.browser_support import streamlit_server
from tests.test_browser import browser, shots, snapshot  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.shared, pytest.mark.slow]

CLIPS = {
    "real": ["ffpp_youtube_c40_183.mp4", "ffpp_youtube_c40_469.mp4", "ffpp_youtube_c23_519.mp4"],
    "fake": ["ffpp_Deepfakes_c40_183_253.mp4", "ffpp_FaceSwap_c40_469_481.mp4", "ffpp_Deepfakes_c23_519_515.mp4"],
}
RUN_TIMEOUT_MS = 480_000  # six clips on a shared 2-core CPU, models loaded cold


@pytest.fixture(scope="module")
def server(shared_data, tmp_path_factory):
    """streamlit on a free port, data root = a tmp folder of symlinks into ../shared/data/clips."""
    root = tmp_path_factory.mktemp("data-root")
    for label, names in CLIPS.items():
        (root / "subset" / label).mkdir(parents=True)
        for name in names:
            (root / "subset" / label / name).symlink_to(shared_data / "clips" / label / name)
    yield from streamlit_server(
        {
            "DFI_WEIGHTS_DIR": str(shared_data / "mesonet" / "weights"),
            "DFI_DATA_ROOT": str(root),
            "DFI_CACHE_DIR": str(tmp_path_factory.mktemp("dfi-cache")),
        },
        tmp_path_factory.mktemp("server"),
    )


def open_app_page(browser, url: str, title: str):  # noqa: F811 (browser is the fixture's value)
    """A new session on the app, then a click on ``title`` in the page menu: the way a person gets
    there (the router, app.py, runs first; the page's own URL alone would bypass it)."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(url)
    page.locator("[data-testid='stSidebarNav']").get_by_text(title).click()
    return page


def idle(page, timeout: int = RUN_TIMEOUT_MS) -> None:
    """Wait until the script run that a click started has ended."""
    page.wait_for_timeout(800)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(timeout=timeout)


def choose(page, combobox, option: str) -> None:
    """Pick ``option`` in a Streamlit selectbox or multiselect: open its list with its button, click it."""
    combobox.scroll_into_view_if_needed()
    widget = page.locator("[data-testid='stSelectbox'], [data-testid='stMultiSelect']").filter(has=combobox)
    widget.get_by_role("button", name="Open").click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")
    # A multiselect commits its value when it loses focus; that rerun would stop a run started by
    # the next click, so blur it now (on the page title) and let that rerun end.
    page.locator("h1").first.click()
    idle(page, 120_000)


def run_comparison(page) -> tuple[float, list[str]]:
    """Press Compare; seconds until the metrics table shows, and its rows."""
    started = time.perf_counter()
    page.get_by_role("button", name="Compare").click()
    table = page.locator("[data-testid='stTable']", has_text="Video AUC")
    table.wait_for(timeout=RUN_TIMEOUT_MS)
    seconds = time.perf_counter() - started
    idle(page)
    rows = [
        " | ".join(cell.inner_text().strip() for cell in row.locator("th, td").all())
        for row in table.locator("tr").all()
    ]
    return seconds, rows


def test_compare_the_default_detectors_stop_then_run_and_open_a_clip(server, browser, shots):  # noqa: F811
    page = open_app_page(browser, server, "Compare detectors")
    page.get_by_text("6 clips", exact=False).first.wait_for(timeout=120_000)
    idle(page)
    models_box = page.get_by_role("combobox", name="Detectors to compare (two or more)")
    chosen = (
        page.locator("[data-testid='stMultiSelect']")
        .filter(has=models_box)
        .locator(".react-aria-ComboBox [data-tag]")
        .all_inner_texts()
    )
    assert len(chosen) == 2  # the two defaults: one Xception, one MesoNet

    page.get_by_role("button", name="Compare").click()
    page.get_by_role("button", name="Stop").click(timeout=60_000)
    warning = page.locator("[data-testid='stAlertContentWarning']", has_text="The comparison was stopped after")
    warning.wait_for(timeout=RUN_TIMEOUT_MS)
    assert re.search(r"stopped after \d of 6 clips; nothing was kept", warning.inner_text())
    idle(page)

    seconds, rows = run_comparison(page)
    print(f"\ndefault detectors, 6 clips, {seconds:.1f} s in the browser:\n" + "\n".join(rows))
    assert any(row.startswith("Video AUC") for row in rows)
    page.get_by_text("ROC curves").first.wait_for()
    roc = page.locator(".js-plotly-plot").first
    roc.wait_for(timeout=60_000)
    assert roc.locator(".scatterlayer .trace").count() >= 2  # the coin-toss line and at least one model
    snapshot(page, shots / "compare.png")

    # Two detectors that both score clips give the A-against-B scatter; a click on a dot opens that clip.
    if page.get_by_text("At least two detectors must have scored clips").count():
        choose(page, models_box, "Meso4 (Deepfake set) (meso4.df)")
        seconds, rows = run_comparison(page)
        print(f"with meso4.df added, {seconds:.1f} s:\n" + "\n".join(rows))
    scatter = page.locator(".js-plotly-plot").nth(2)
    scatter.wait_for(timeout=60_000)
    dot = scatter.locator(".scatterlayer .trace .points path").first
    dot.evaluate("e => e.scrollIntoView({block: 'center'})")
    box = dot.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text(re.compile(r"^Clip: (real|fake)/")).first.wait_for(timeout=RUN_TIMEOUT_MS)
    page.locator(".dfi-verdict").first.wait_for(timeout=RUN_TIMEOUT_MS)
    snapshot(page, shots / "compare_clip.png")


def test_upload_the_authors_meso4_weights_then_analyze_offers_them(server, browser, shared_data, shots):  # noqa: F811
    page = open_app_page(browser, server, "Detectors and weights")
    page.get_by_text("Add your own weights").first.wait_for(timeout=120_000)
    assert page.get_by_text("Weights installed").count() >= 4  # the four MesoNet cards, from DFI_WEIGHTS_DIR

    choose(page, page.get_by_role("combobox", name="Architecture it was trained for"), "Meso4")
    idle(page, 60_000)
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(
        str(shared_data / "mesonet" / "weights" / "Meso4_DF.h5")
    )
    page.get_by_text("Meso4_DF.h5 fits Meso4 (Keras 2 weights file").wait_for(timeout=120_000)
    inputs = page.locator("[data-testid='stForm'] [data-testid='stTextInput'] input")
    inputs.nth(0).fill("authors_again")
    inputs.nth(1).fill("Meso4 by the authors, uploaded")
    inputs.nth(2).fill("Apache-2.0")
    page.locator("[data-testid='stForm'] textarea").first.fill("the MesoNet authors' Deepfake face set")
    page.get_by_text("the chance the face is REAL").click()
    page.get_by_role("button", name="Save the weights and card").click()
    page.get_by_text("is now offered on the Analyze and Compare pages").wait_for(timeout=120_000)
    snapshot(page, shots / "models.png")

    page.goto(server)
    page.get_by_text("Try a sample clip").first.wait_for(timeout=120_000)
    idle(page)
    page.get_by_text("Options: how many frames, which detectors").click()
    page.wait_for_timeout(1000)  # the expander opening
    choose(
        page,
        page.get_by_role("combobox", name="Detectors to compare"),
        "Meso4 by the authors, uploaded (meso4.authors_again)",
    )
    tags = page.locator("[data-testid='stMultiSelect'] .react-aria-ComboBox [data-tag]").all_inner_texts()
    assert "Meso4 by the authors, uploaded (meso4.authors_again)" in tags
