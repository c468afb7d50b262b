"""End to end in a real browser: the Train page, driven by Playwright through Debian's Chromium.

A person's path: open the Train page, pick ../shared/data/crops, let the app find the faces, set one
epoch, start; see the learning curves appear and the run finish; press "Use this model"; then find
the new detector offered on the Analyze page. The server runs with a private cache (runs, cards,
weights) and the shared data as its data root.

Screenshots go to $DFI_SCREENSHOTS when set, else to pytest's tmp folder.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.browser_support import launch_chromium, screenshots_folder, streamlit_server
from tests.test_browser import snapshot

pytestmark = [pytest.mark.browser, pytest.mark.shared, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
JOB_TIMEOUT_MS = 300_000  # extraction plus a 1-epoch run on a busy 2-core CPU


@pytest.fixture(scope="module")
def server(shared_data, tmp_path_factory):
    """A streamlit server with a private cache (runs, cards, weights) and the shared data as its
    data root; stopped at the end."""
    yield from streamlit_server(
        {
            "DFI_WEIGHTS_DIR": str(shared_data / "mesonet" / "weights"),
            "DFI_DATA_ROOT": str(shared_data),
            "DFI_CACHE_DIR": str(tmp_path_factory.mktemp("dfi-cache")),
        },
        tmp_path_factory.mktemp("server"),
    )


@pytest.fixture(scope="module")
def page(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = launch_chromium(pw)
        tab = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        tab.set_default_timeout(90_000)  # clicks on a busy 2-core CPU, where every rerun is slow
        yield tab
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return screenshots_folder(tmp_path_factory)


def settle(page, timeout_ms: int = 120_000) -> None:
    """Wait until the script run in progress has ended (stale elements are gone)."""
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(timeout=timeout_ms)


def detector_offered(page, card_id: str) -> bool:
    """Whether the Analyze page's "Detectors to compare" box lists ``card_id`` (typed as a filter).
    The box's list opens on a key press once it has focus; a redraw can close it, so try again."""
    search = page.locator("[data-testid='stMultiSelect'] input")
    option = page.get_by_role("option", name=re.compile(re.escape(f"({card_id})")))
    for _ in range(3):
        search.click()
        search.press("ArrowDown")
        search.press_sequentially(card_id, delay=20)
        try:
            option.wait_for(timeout=20_000)
            return True
        except Exception:  # Playwright's TimeoutError: close the list and try again
            search.press("Escape")
            search.fill("")
    return False


def nav_link(page, title: str):
    return page.locator("[data-testid='stSidebarNavLink']", has_text=title)


def test_train_on_shared_crops_then_use_the_model_on_the_analyze_page(server, page, shots):
    started = time.perf_counter()
    # In by the front door, as a person would (deep links are tested in test_browser.py); a deep link
    # was matched against Streamlit's legacy pages/ folder listing (now views/, see app.py).
    page.goto(server)
    page.get_by_text("Try a sample clip").first.wait_for(timeout=120_000)
    nav_link(page, "Train a detector").click()
    page.get_by_text("New training run").wait_for(timeout=120_000)

    # Pick the shared crops (raw face photos): the app offers to find the faces first.
    page.locator("[data-testid='stSelectbox']", has_text="Labelled data").click()
    page.get_by_role("option", name="crops", exact=True).click()
    page.get_by_role("button", name="Find the faces").click()
    page.get_by_text("Training uses the faces found in these clips").wait_for(timeout=JOB_TIMEOUT_MS)

    settle(page)
    page.get_by_text("Training settings").first.click()
    epochs = page.get_by_label("Epochs (passes over the data)")
    epochs.fill("1")
    epochs.press("Enter")
    settle(page)
    page.get_by_role("button", name="Start training").click()
    flash = page.get_by_text(re.compile(r"Started meso4\.[a-z0-9_-]+"))
    try:
        flash.wait_for(timeout=60_000)
    finally:
        snapshot(page, shots / "train-started.png")
    card_id = re.search(r"meso4\.[a-z0-9_-]+", flash.inner_text()).group(0)

    # The learning curves appear after the epoch, then the run finishes.
    page.locator(".js-plotly-plot").first.wait_for(timeout=JOB_TIMEOUT_MS)
    page.get_by_text("Finished in").wait_for(timeout=JOB_TIMEOUT_MS)
    trained = time.perf_counter() - started
    snapshot(page, shots / "train-finished.png")
    page.get_by_role("button", name="Use this model").click()
    page.get_by_text("now offer it").wait_for(timeout=60_000)

    # The Analyze page offers the new detector.
    nav_link(page, "Analyze a clip").click()
    page.get_by_text("Try a sample clip").first.wait_for(timeout=120_000)
    page.locator("[data-testid='stSidebar']").get_by_text(card_id).wait_for(timeout=60_000)
    settle(page, 240_000)  # the first visit loads the detectors; the list redraws until it is done
    page.get_by_text("Options: how many frames, which detectors").click()
    try:
        assert detector_offered(page, card_id), f"{card_id} is not in the list of detectors to compare"
    finally:
        snapshot(page, shots / "train-model-offered.png")
    print(f"\nbrowser: open Train page, find faces in 22 crops, train 1 epoch of Meso4: {trained:.1f} s")
