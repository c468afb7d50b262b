"""End to end in a real browser: `streamlit run app.py` driven by Playwright through Debian's Chromium.

The server is started on a free localhost port with the MesoNet authors' weights from
../shared/data, real clips are uploaded through the page's own file input, and the test waits for
what a person would see: both verdict cards, the plotly timeline, the face crops. Then a broken
file gives a plain error, two sessions analyse different clips at the same time and each gets
exactly the report an independent analysis gives, and the same clip again comes from the cache.

Screenshots go to $DFI_SCREENSHOTS when set (e.g. /tmp/shots), else to pytest's tmp folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.browser_support import ROOT, launch_chromium, screenshots_folder, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.shared, pytest.mark.slow]

REAL_CLIP = "clips/real/dfdc_lynaeydofd.mp4"  # 10 s, 1080p: the speed measurement clip
FAKE_CLIP = "clips/fake/dfdc_widuwuoiur.mp4"
OTHER_REAL = "clips/real/ffpp_youtube_c40_183.mp4"
ANALYSIS_TIMEOUT_MS = 240_000  # a cold start on a shared 2-core CPU


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return screenshots_folder(tmp_path_factory)


@pytest.fixture(scope="module")
def server(shared_data, tmp_path_factory):
    """A streamlit server for this module with the MesoNet authors' weights; stopped at the end."""
    yield from streamlit_server(
        {
            "DFI_WEIGHTS_DIR": str(shared_data / "mesonet" / "weights"),
            "DFI_CACHE_DIR": str(tmp_path_factory.mktemp("dfi-cache")),
        },
        tmp_path_factory.mktemp("server"),
    )


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = launch_chromium(pw)
        yield chromium
        chromium.close()


def open_page(browser, url: str):
    """A new browser session on the app, once its first script run (model warm-up) has ended."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True).new_page()
    page.goto(url)
    page.get_by_text("Try a sample clip").first.wait_for(timeout=120_000)
    # The first visit loads the detectors while the script still runs; wait for the run to end so
    # the timings below are of a warm server.
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(timeout=ANALYSIS_TIMEOUT_MS)
    return page


def upload_and_wait(page, clip: Path) -> float:
    """Upload ``clip`` through the page's file input; seconds until both verdict cards show."""
    start = time.perf_counter()
    page.locator('input[type="file"]').set_input_files(str(clip))
    page.get_by_text(clip.name).first.wait_for(timeout=30_000)  # the uploader lists the file
    wait_for_results(page, clip.name)
    return time.perf_counter() - start


def wait_for_results(page, clip_name: str) -> None:
    page.locator(".dfi-verdict").nth(1).wait_for(timeout=ANALYSIS_TIMEOUT_MS)
    # The caption names the analysed clip: the cards on screen belong to this clip, not the last one.
    page.locator("[data-testid='stCaptionContainer']", has_text=f"{clip_name} ·").first.wait_for(
        timeout=ANALYSIS_TIMEOUT_MS
    )


def snapshot(page, path: Path) -> None:
    """The whole page as a PNG. Streamlit scrolls inside its own container, so a tall viewport
    (not full_page) is what captures everything."""
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": 3400})
    page.wait_for_timeout(1500)  # let plotly redraw at the new size
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def verdicts(page) -> dict[str, str]:
    cards = page.locator(".dfi-verdict")
    return {
        cards.nth(i).get_attribute("data-model"): cards.nth(i).get_attribute("data-verdict")
        for i in range(cards.count())
    }


def downloaded_report(page) -> dict:
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Report (JSON)").click()
    return json.loads(Path(download.value.path()).read_text())


def test_a_deep_link_on_a_fresh_server_opens_that_page_inside_the_app(server, browser):
    """First test of the module, so the server has run no script yet: /compare must still go
    through app.py (sidebar, the five pages and nothing else), not run the page file alone."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{server}/compare")
    page.get_by_text("Compare detectors").first.wait_for(timeout=120_000)
    page.locator("[data-testid='stSidebarNav']").wait_for(timeout=60_000)
    links = page.locator("[data-testid='stSidebarNavLink']").all_inner_texts()
    assert [text.split("\n")[-1].strip() for text in links] == [  # after the icon's ligature name
        "Analyze a clip",
        "Compare detectors",
        "Detectors and weights",
        "Train a detector",
        "Scan a folder",
    ]
    page.context.close()


def test_upload_real_clip_then_broken_file(server, browser, shared_data, shots, tmp_path):
    started = time.perf_counter()
    page = open_page(browser, server)
    ready = time.perf_counter() - started
    clip = shared_data / REAL_CLIP
    seconds = upload_and_wait(page, clip)
    cards = verdicts(page)
    assert len(cards) == 2
    # Both families run: the project's shipped Xception and the best MesoNet present.
    assert cards["xception.dfi2"] in {"FAKE", "REAL", "UNCERTAIN"}
    assert [v for k, v in cards.items() if k.startswith("meso")][0] in {"FAKE", "REAL", "UNCERTAIN"}
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    assert page.locator("img.dfi-crop-img").count() >= 8

    # Clicking a dot of the timeline shows that frame's face crop under the chart.
    # Plotly takes clicks on its drag layer, not on the marker, so click at the marker's position.
    dot = page.locator(".js-plotly-plot .scatterlayer .trace .points path").nth(5)
    dot.evaluate("e => e.scrollIntoView({block: 'center'})")
    box = dot.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text(re.compile(r"\(frame \d+, person 1\)")).first.wait_for(timeout=60_000)
    snapshot(page, shots / "real.png")
    print(
        f"\nfirst visit until the detectors are loaded (cold start): {ready:.1f} s; "
        f"upload to verdict, {clip.name} (10 s, 1080p): {seconds:.1f} s"
    )

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(os.urandom(64 * 1024))
    page.locator('input[type="file"]').set_input_files(str(broken))
    alert = page.locator("[data-testid='stAlertContentError']").first
    alert.wait_for(timeout=60_000)
    text = alert.inner_text()
    assert "Try another file" in text and "Traceback" not in text
    assert page.locator(".dfi-verdict").count() == 0
    snapshot(page, shots / "broken.png")


def test_heatmaps_beside_every_crop_and_for_a_clicked_dot(server, browser, shared_data, shots):
    """Toggling "Show where each detector looked" puts both detectors' heatmaps beside every crop;
    a dot clicked on the timeline shows its crop with its heatmaps (same clip as above: cached)."""
    page = open_page(browser, server)
    clip = shared_data / REAL_CLIP
    upload_and_wait(page, clip)
    crops = page.locator("img.dfi-crop-img")
    crops.first.wait_for(timeout=60_000)
    assert page.locator("img.dfi-heat-img").count() == 0  # only when asked
    page.get_by_text("Show where each detector looked").first.click()
    page.locator("img.dfi-heat-img[data-model='xception.dfi2']").first.wait_for(timeout=ANALYSIS_TIMEOUT_MS)
    n = crops.count()
    assert n >= 8
    assert page.locator("img.dfi-heat-img[data-model='xception.dfi2']").count() == n
    assert page.locator("img.dfi-heat-img[data-model^='meso']").count() == n
    assert page.get_by_text("not proof that anything was manipulated").count() >= 1
    page.get_by_role("button", name="Heatmaps (ZIP)").wait_for(timeout=30_000)

    dot = page.locator(".js-plotly-plot .scatterlayer .trace .points path").nth(3)
    dot.evaluate("e => e.scrollIntoView({block: 'center'})")
    box = dot.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text(re.compile(r"\(frame \d+, person 1\)")).first.wait_for(timeout=60_000)
    page.get_by_text("Where Xception looked").first.wait_for(timeout=60_000)
    page.get_by_text("Where MesoNet looked").first.wait_for(timeout=60_000)
    # The zip holds a crop and an overlay per detector for every crop, and the index.
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Heatmaps (ZIP)").click()
    import zipfile

    names = zipfile.ZipFile(download.value.path()).namelist()
    assert len([x for x in names if x.endswith(".png")]) == 3 * n and "index.html" in names
    page.get_by_text(re.compile(r"\(frame \d+, person 1\)")).first.evaluate("e => e.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "heatmaps_clicked.png"))  # the clicked crop and its heatmaps
    snapshot(page, shots / "heatmaps.png")


def test_two_sessions_at_once_each_get_their_own_correct_report(server, browser, shared_data, shots):
    clips = [shared_data / FAKE_CLIP, shared_data / OTHER_REAL]
    pages = [open_page(browser, server) for _ in clips]
    for page, clip in zip(pages, clips):
        page.locator('input[type="file"]').set_input_files(str(clip))  # both run at once
    reports = []
    for page, clip in zip(pages, clips):
        wait_for_results(page, clip.name)
        reports.append(downloaded_report(page))
    snapshot(pages[0], shots / "fake.png")

    # Each session's report equals an independent command-line analysis of its own clip.
    env = dict(os.environ, DFI_WEIGHTS_DIR=str(shared_data / "mesonet" / "weights"))
    for clip, report in zip(clips, reports):
        ids = ",".join(m["id"] for m in report["models"])
        done = subprocess.run(
            [sys.executable, "-m", "core", "analyze", str(clip), "--frames", "32", "--models", ids, "--json", "-"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        expected = json.loads(done.stdout)
        assert report["clip"]["sha256"] == expected["clip"]["sha256"]
        for got, want in zip(report["models"], expected["models"]):
            assert got["verdict"] == want["verdict"]
            if want["p_fake"] is not None:
                assert got["p_fake"] == pytest.approx(want["p_fake"], abs=1e-3)


def test_same_clip_again_comes_from_the_cache(server, browser, shared_data):
    page = open_page(browser, server)
    clip = shared_data / REAL_CLIP
    seconds = upload_and_wait(page, clip)
    caption = page.locator("[data-testid='stCaptionContainer']", has_text="reused from an earlier").first
    caption.wait_for(timeout=10_000)
    shown_in = float(re.search(r"same clip in ([0-9.]+) s", caption.inner_text()).group(1))
    print(
        f"\ncache hit: report ready {shown_in:.2f} s after the script started; "
        f"{seconds:.1f} s from upload to verdict in the browser"
    )
    assert shown_in < 1.0
