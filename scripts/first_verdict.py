"""Seconds from upload to verdict on a fresh server, in a real browser (Debian's Chromium).

    python scripts/first_verdict.py CLIP [--repo CHECKOUT] [--out result.json] [--env NAME=VALUE ...]

Starts ``streamlit run app.py`` in the checkout (a fresh process: nothing loaded), opens the page
in headless Chromium through Playwright, and as soon as the page shows its upload button uploads
the clip, then waits until two verdict cards and the clip's caption are shown (as
tests/test_browser.py does). Prints server start → healthy, healthy → page shown, and upload →
verdict, and whether the page said "Loading detectors" meanwhile. ``--wait-loaded`` uploads only
once that note is gone (a visitor who takes a few seconds to pick the file). A measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--wait-loaded",
        action="store_true",
        help="upload once the page no longer says 'Loading detectors' (a visitor who takes a few seconds)",
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cache = tempfile.mkdtemp(prefix="dfi-first-verdict-")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", DFI_CACHE_DIR=cache)
    env.update(dict(item.split("=", 1) for item in args.env))
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    command += ["--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    log_path = Path(cache) / "streamlit.log"
    result = {"clip": str(args.clip), "repo": str(args.repo), "load_at_start": os.getloadavg()}
    with log_path.open("w") as log:
        started = time.monotonic()
        server = subprocess.Popen(command, cwd=args.repo, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while True:
                try:
                    if requests.get(f"{url}/_stcore/health", timeout=2).text.strip() == "ok":
                        break
                except requests.RequestException:
                    time.sleep(0.2)
            healthy = time.monotonic()
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                page.goto(url)
                page.get_by_text("Try a sample clip").first.wait_for(timeout=args.timeout * 1000)
                shown = time.monotonic()
                loading_note = page.get_by_text("Loading detectors").count() > 0
                if args.wait_loaded:
                    page.wait_for_timeout(1500)  # the note is drawn by the page's first run
                    page.get_by_text("Loading detectors").first.wait_for(state="hidden", timeout=args.timeout * 1000)
                result["page_shown_to_upload_s"] = round(time.monotonic() - shown, 2)
                page.locator('input[type="file"]').set_input_files(str(args.clip))
                uploaded = time.monotonic()
                caption = page.locator("[data-testid='stCaptionContainer']", has_text=f"{args.clip.name} ·")
                while not (page.locator(".dfi-verdict").count() >= 2 and caption.count() > 0):
                    if time.monotonic() - uploaded > args.timeout:
                        raise SystemExit(f"no verdict within {args.timeout} s")
                    loading_note = loading_note or page.get_by_text("Loading detectors").count() > 0
                    time.sleep(0.1)
                done = time.monotonic()
                cards = page.locator(".dfi-verdict")
                result["verdicts"] = {
                    cards.nth(i).get_attribute("data-model"): cards.nth(i).get_attribute("data-verdict")
                    for i in range(cards.count())
                }
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    result.update(
        {
            "server_start_to_healthy_s": round(healthy - started, 2),
            "healthy_to_page_shown_s": round(shown - healthy, 2),
            "upload_to_verdict_s": round(done - uploaded, 2),
            "page_said_loading_detectors": loading_note,
            "server_log_has_traceback": "Traceback" in log_path.read_text(),
            "load_at_end": os.getloadavg(),
        }
    )
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
