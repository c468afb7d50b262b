"""Shared fixtures: where ../shared/data is, and how tests that need it skip or fail."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The shared test data beside the checkout (CI's layout); DFI_SHARED_DATA points elsewhere. The app
# itself knows nothing of it: its data root is the user's own folder, and the tests point that
# setting here, so the Compare and Train pages see real labelled clips.
SHARED_DATA = Path(os.environ.get("DFI_SHARED_DATA") or PROJECT_ROOT.parent / "shared" / "data")
os.environ.setdefault("DFI_DATA_ROOT", str(SHARED_DATA))


def _require(what: str, ok: bool, env: str) -> None:
    """Skip with a reason when ``what`` is missing; fail instead when ``env`` is set to 1."""
    if ok:
        return
    if os.environ.get(env) == "1" or (env == "DFI_REQUIRE_TOOLS" and os.environ.get("CI") == "true"):
        pytest.fail(f"{what} is required here ({env}=1 or CI) but missing")
    pytest.skip(f"{what} is missing")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder (real clips, crops, MesoNet weights)."""
    path = SHARED_DATA
    _require(f"shared test data at {path}", (path / "README.md").is_file(), "DFI_REQUIRE_SHARED")
    return path


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    """Debian's ffmpeg, used to make H.264/HEVC/AV1 test clips that OpenCV cannot write."""
    exe = shutil.which("ffmpeg")
    _require("ffmpeg", exe is not None, "DFI_REQUIRE_TOOLS")
    return exe


@pytest.fixture(scope="session")
def mesonet_weights_dir(shared_data: Path) -> Path:
    return shared_data / "mesonet" / "weights"


# --- Synthetic clips (tests/clipgen.py), made once per session; need Debian's ffmpeg ---------

from collections.abc import Mapping  # noqa: E402  (kept with the fixtures that use them)
from types import MappingProxyType  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_clips(ffmpeg: str, tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, Path]:
    """Readable clips by name (read-only mapping), all 640x480 unless noted.

    ``face`` (H.264 .mp4, 48 frames, 24 fps), ``hevc_mov`` (HEVC .mov tagged hvc1, 30 fps),
    ``vp9_webm`` (25 fps), ``av1_mkv`` (24 fps), ``mjpg_avi`` (15 fps): one moving face each;
    ``no_face`` and ``two_faces`` (H.264, 48 frames, 24 fps); ``portrait`` (1080x1920 upright,
    stored landscape with rotation metadata, 16 frames, 30 fps); ``no_duration_webm`` (48 frames,
    25 fps, no duration in the container, so OpenCV reports a negative frame count).
    """
    from tests.clipgen import make_clips

    return MappingProxyType(make_clips(tmp_path_factory.mktemp("synthetic_clips"), ffmpeg))


@pytest.fixture(scope="session")
def bad_clips(ffmpeg: str, tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, Path]:
    """Files that must give InvalidClipError, by name (read-only mapping).

    ``empty``, ``random_bytes``, ``text``, ``png`` (all named .mp4), ``truncated`` (first half of
    an H.264 .mp4), ``one_frame``, ``too_long`` (2 h at 1 fps, beyond the 600 s limit).
    """
    from tests.clipgen import make_bad_files

    return MappingProxyType(make_bad_files(tmp_path_factory.mktemp("bad_clips"), ffmpeg))


@pytest.fixture(scope="session")
def face_clip(synthetic_clips: Mapping[str, Path]) -> Path:
    """The plain H.264 .mp4 with one moving face (640x480, 48 frames, 24 fps)."""
    return synthetic_clips["face"]


@pytest.fixture
def http_folder(tmp_path):
    """A folder served by a local HTTP server on 127.0.0.1; yields (folder, base url)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
