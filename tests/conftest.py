"""Shared fixtures: where ../shared/data is, and how tests that need it skip or fail."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from core.settings import get_settings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
    path = get_settings().shared_data
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
