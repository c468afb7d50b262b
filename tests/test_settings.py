"""Settings a person sets through DFI_* variables: typed, ranged, and a data root of their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT, Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DFI_MAX_UPLOAD_MB", "-1"),
        ("DFI_MAX_UPLOAD_MB", "0"),
        ("DFI_MAX_DURATION_S", "-5"),
        ("DFI_MAX_FRAMES", "100000"),
        ("DFI_FACE_CONFIDENCE", "1.5"),
        ("DFI_CROP_MARGIN", "0.5"),
        ("DFI_DETECT_PAD", "-0.1"),
    ],
)
def test_out_of_range_values_are_refused_with_their_name(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=rf"{name}=\S+ is out of range"):
        get_settings()


def test_frame_counts_must_agree(monkeypatch):
    monkeypatch.setenv("DFI_MAX_FRAMES", "16")
    with pytest.raises(
        ValueError, match="DFI_DEFAULT_FRAMES=32 must lie between DFI_MIN_FRAMES=2 and DFI_MAX_FRAMES=16"
    ):
        get_settings()
    monkeypatch.setenv("DFI_DEFAULT_FRAMES", "8")
    assert get_settings().max_frames == 16


def test_ray_address_must_be_a_dashboard_url(monkeypatch):
    monkeypatch.setenv("DFI_RAY_ADDRESS", "10.0.0.1:6379")
    with pytest.raises(ValueError, match="DFI_RAY_ADDRESS"):
        get_settings()
    monkeypatch.setenv("DFI_RAY_ADDRESS", "http://127.0.0.1:8265")
    assert get_settings().ray_address == "http://127.0.0.1:8265"


def test_values_in_range_and_wrong_types(monkeypatch):
    monkeypatch.setenv("DFI_MAX_UPLOAD_MB", "50")
    assert get_settings().max_upload_bytes == 50 * 1024 * 1024
    monkeypatch.setenv("DFI_MAX_UPLOAD_MB", "lots")
    with pytest.raises(ValueError, match="DFI_MAX_UPLOAD_MB='lots' is not valid"):
        get_settings()


def test_bad_setting_is_one_error_line_on_the_command_line():
    env = {"DFI_MAX_UPLOAD_MB": "-1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    done = subprocess.run(
        [sys.executable, "-m", "core", "models"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: DFI_MAX_UPLOAD_MB=-1 is out of range"), done.stderr
    assert "Traceback" not in done.stderr


def test_data_root_is_the_users_own_folder_created_on_first_use(monkeypatch, tmp_path):
    default = Settings().data_root
    assert PROJECT_ROOT.parent not in default.parents  # not the repository's neighbours
    assert default.parent == Path.home()
    monkeypatch.setenv("DFI_DATA_ROOT", str(tmp_path / "mine"))
    settings = get_settings()
    assert not settings.data_root.exists()  # building settings touches no disk
    assert settings.ensure_data_root().is_dir()
