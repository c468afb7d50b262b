"""What the browser tests share: a streamlit server on a free localhost port, Debian's Chromium.

Each browser test module has its own server (its own data root, cache and weights), started by
:func:`streamlit_server` from a module-scoped fixture, and checked for tracebacks when it stops.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
HEALTHY_WITHIN_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_chromium() -> None:
    """Skip without Debian's Chromium, or fail when the run requires everything (CI)."""
    if Path(CHROMIUM).is_file():
        return
    if os.environ.get("DFI_REQUIRE_SHARED") == "1":
        pytest.fail(f"Chromium is required at {CHROMIUM}")
    pytest.skip(f"Debian's Chromium is not at {CHROMIUM}")


def streamlit_server(
    env: dict[str, str], log_dir: Path, *, root: Path = ROOT, as_readme: bool = False
) -> Iterator[str]:
    """Run ``streamlit run app.py`` in ``root`` with ``env`` added; yield its URL once healthy; stop it after.

    The server's output goes to ``log_dir/streamlit.log``; a traceback in it fails the test
    module, since the app must never show or log one. ``as_readme`` starts it as the README's start
    command does, with only port, address and headless added: the project's .streamlit/config.toml
    alone then decides the file watcher (otherwise it is turned off on the command line).
    """
    require_chromium()
    port = free_port()
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **env)
    log_path = log_dir / "streamlit.log"
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
    ]
    if not as_readme:
        cmd += ["--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=root, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + HEALTHY_WITHIN_S
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"streamlit exited early:\n{log_path.read_text()[-3000:]}")
                try:
                    if requests.get(f"{url}/_stcore/health", timeout=2).text.strip() == "ok":
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not become healthy within {HEALTHY_WITHIN_S} s")
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    server_log = log_path.read_text()
    assert "Traceback" not in server_log, server_log[-3000:]


def launch_chromium(playwright):
    """Debian's Chromium through Playwright (``playwright install`` cannot download browsers here)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)


def screenshots_folder(tmp_path_factory) -> Path:
    """$DFI_SCREENSHOTS when set (to look at them), else a pytest tmp folder."""
    folder = Path(os.environ.get("DFI_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
