"""Uploaded weights are parsed in a child process with memory and time limits.

libhdf5 is C code reading untrusted bytes: a crafted file could crash it or make it allocate
without end. check_weights runs the parsing in ``python -m models.weight_check`` with an
address-space limit and a timeout, and turns a crash, a hang or an exhausted limit into one plain
UserWeightsError, while a normal weights file still passes.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from core.settings import PROJECT_ROOT, get_settings
from models import user_weights
from models.user_weights import UserWeightsError, check_weights

SHIPPED_MESO4 = PROJECT_ROOT / "models" / "weights" / "meso4.dfi2.weights.h5"


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    return get_settings()


def _child_instead(monkeypatch, code: str) -> None:
    """Run ``code`` as the checker instead of models.weight_check (raising=False: the test must
    also run, and fail, where there is no child at all)."""
    monkeypatch.setattr(
        user_weights, "_child_command", lambda *args: [sys.executable, "-c", textwrap.dedent(code)], raising=False
    )


def test_a_normal_file_still_passes(settings):
    check = check_weights(SHIPPED_MESO4.read_bytes(), "meso4", settings)
    assert check.format == "keras3" and check.size_bytes == SHIPPED_MESO4.stat().st_size


@pytest.mark.shared
def test_the_authors_legacy_file_still_passes(settings, mesonet_weights_dir):
    assert check_weights((mesonet_weights_dir / "Meso4_DF.h5").read_bytes(), "meso4", settings).format == "legacy"


def test_the_server_process_never_parses_the_file(tmp_path):
    """h5py and TensorFlow stay out of the process that called check_weights."""
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from models.user_weights import check_weights
        check_weights(Path({str(SHIPPED_MESO4)!r}).read_bytes(), "meso4")
        loaded = sorted(m for m in ("h5py", "tensorflow", "keras") if m in sys.modules)
        assert not loaded, f"the caller itself loaded {{loaded}}"
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1]


def test_a_checker_that_crashes_gives_one_plain_line(settings, monkeypatch):
    _child_instead(monkeypatch, "import os; os.abort()")
    with pytest.raises(UserWeightsError, match="SIGABRT") as caught:
        check_weights(SHIPPED_MESO4.read_bytes(), "meso4", settings)
    assert "\n" not in caught.value.message and "damaged" in caught.value.message


def test_a_checker_that_hangs_is_stopped_at_the_timeout(settings, monkeypatch):
    _child_instead(monkeypatch, "import time; time.sleep(120)")
    started = time.monotonic()
    with pytest.raises(UserWeightsError, match="longer than 2 s"):
        check_weights(SHIPPED_MESO4.read_bytes(), "meso4", settings, timeout_s=2)
    assert time.monotonic() - started < 15


def test_the_memory_limit_applies_to_the_checker(settings):
    """A limit far below what loading TensorFlow needs: the check fails cleanly, the server lives."""
    with pytest.raises(UserWeightsError) as caught:
        check_weights(SHIPPED_MESO4.read_bytes(), "meso4", settings, memory_limit_bytes=400 * 1024**2)
    assert "memory" in caught.value.message and "\n" not in caught.value.message
