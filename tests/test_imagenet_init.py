"""Training's ImageNet start: where the file is looked for, that init "imagenet" loads exactly its
weights, a plain error when it is absent, and ``python -m core models --download imagenet-xception``
(served from a local HTTP folder with Keras' address and md5 pointed at it; offline; wrong md5).
"""

from __future__ import annotations

import hashlib
import http.server
import socket
from pathlib import Path

import h5py
import numpy as np
import pytest

import models.download as download
from core.__main__ import main
from core.settings import IMAGENET_XCEPTION_FILE, get_settings
from core.training.networks import TrainError, backbone_of, build_architecture, initialise
from tests.test_cli import assert_one_error_line


@pytest.fixture
def keras_home(tmp_path, monkeypatch) -> Path:
    """An empty Keras cache and no ImageNet setting, so nothing on this machine leaks in."""
    home = tmp_path / "keras"
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DFI_IMAGENET_WEIGHTS", raising=False)
    return home


@pytest.fixture
def shared_imagenet(shared_data: Path) -> Path:
    path = shared_data / "imagenet" / IMAGENET_XCEPTION_FILE
    assert path.is_file(), f"{path} is missing from the shared data"
    return path


def test_the_setting_wins_over_the_keras_cache(keras_home, tmp_path, monkeypatch):
    assert get_settings().imagenet_weights_file() == keras_home / "models" / IMAGENET_XCEPTION_FILE
    monkeypatch.setenv("DFI_IMAGENET_WEIGHTS", str(tmp_path / "mine.h5"))
    assert get_settings().imagenet_weights_file() == tmp_path / "mine.h5"


@pytest.mark.shared
def test_imagenet_init_loads_exactly_the_files_weights(keras_home, shared_imagenet, monkeypatch):
    monkeypatch.setenv("DFI_IMAGENET_WEIGHTS", str(shared_imagenet))
    net = build_architecture("xception", 128)
    note = initialise(net, "xception", "imagenet", get_settings())
    assert IMAGENET_XCEPTION_FILE in note
    backbone = backbone_of(net)
    with h5py.File(shared_imagenet, "r") as f:
        # The first and the last weights of the backbone: the whole file went in, in order.
        first = f["block1_conv1/block1_conv1/kernel"][()]
        last = f["block14_sepconv2_bn/block14_sepconv2_bn/moving_variance"][()]
    np.testing.assert_array_equal(backbone.get_layer("block1_conv1").get_weights()[0], first)
    np.testing.assert_array_equal(backbone.get_layer("block14_sepconv2_bn").get_weights()[3], last)


@pytest.mark.parametrize("use_setting", [False, True])
def test_imagenet_init_fails_plainly_when_the_file_is_absent(keras_home, tmp_path, monkeypatch, use_setting):
    if use_setting:
        monkeypatch.setenv("DFI_IMAGENET_WEIGHTS", str(tmp_path / "absent.h5"))
    settings = get_settings()
    with pytest.raises(TrainError) as caught:
        initialise(build_architecture("xception", 71), "xception", "imagenet", settings)
    message = str(caught.value)
    assert "\n" not in message
    assert str(settings.imagenet_weights_file()) in message
    assert str(keras_home / "models" / IMAGENET_XCEPTION_FILE) in message  # the Keras cache, always
    assert "DFI_IMAGENET_WEIGHTS" in message and "--download imagenet-xception" in message


def test_a_file_that_is_not_xception_weights_is_refused_plainly(keras_home, tmp_path, monkeypatch):
    (tmp_path / "junk.h5").write_bytes(b"an interrupted copy, not HDF5")
    monkeypatch.setenv("DFI_IMAGENET_WEIGHTS", str(tmp_path / "junk.h5"))
    with pytest.raises(TrainError, match="cannot load ImageNet Xception weights") as caught:
        initialise(build_architecture("xception", 71), "xception", "imagenet", get_settings())
    assert "\n" not in str(caught.value)


# --- python -m core models --download imagenet-xception ------------------------------------------

FAKE_FILE = b"not really Xception, but it has the md5 the test expects"


@pytest.fixture
def served_imagenet(http_folder, monkeypatch) -> bytes:
    """Keras' address and md5 pointed at a small fake file on a local server."""
    # The fixture's own silencing sets log_message on a functools.partial, which the handler never
    # reads: without this, request lines reach stderr and hide whether the CLI printed one line.
    monkeypatch.setattr(http.server.SimpleHTTPRequestHandler, "log_message", lambda *args: None)
    folder, base = http_folder
    (folder / IMAGENET_XCEPTION_FILE).write_bytes(FAKE_FILE)
    monkeypatch.setattr(download, "IMAGENET_XCEPTION_URL", f"{base}/{IMAGENET_XCEPTION_FILE}")
    monkeypatch.setattr(download, "IMAGENET_XCEPTION_MD5", hashlib.md5(FAKE_FILE).hexdigest())
    return FAKE_FILE


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_puts_the_verified_file_in_the_keras_cache(keras_home, served_imagenet, capsys):
    assert main(["models", "--download", "imagenet-xception"]) == 0
    target = keras_home / "models" / IMAGENET_XCEPTION_FILE
    assert target.read_bytes() == served_imagenet
    assert _files(target.parent) == [IMAGENET_XCEPTION_FILE]  # no temporary file left
    assert f"imagenet-xception: weights at {target} (md5 ok)" in capsys.readouterr().err
    assert main(["models", "--download", "imagenet-xception"]) == 0  # present: not fetched again
    assert "already at" in capsys.readouterr().err


def test_download_goes_where_the_setting_points(keras_home, served_imagenet, tmp_path, monkeypatch):
    monkeypatch.setenv("DFI_IMAGENET_WEIGHTS", str(tmp_path / "weights" / "xception-imagenet.h5"))
    path = download.download_imagenet_xception(get_settings())
    assert path == tmp_path / "weights" / "xception-imagenet.h5" and path.read_bytes() == served_imagenet
    assert not (keras_home / "models").exists()


def test_download_with_another_md5_leaves_nothing(keras_home, served_imagenet, capsys, monkeypatch):
    monkeypatch.setattr(download, "IMAGENET_XCEPTION_MD5", "0" * 32)
    assert main(["models", "--download", "imagenet-xception"]) == 2
    line = assert_one_error_line(capsys.readouterr().err)
    assert "md5" in line and "discarded" in line
    assert _files(keras_home / "models") == []


def test_download_offline_is_one_plain_line(keras_home, capsys, monkeypatch):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{IMAGENET_XCEPTION_FILE}"
    monkeypatch.setattr(download, "IMAGENET_XCEPTION_URL", url)
    assert main(["models", "--download", "imagenet-xception"]) == 2
    line = assert_one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: could not download imagenet-xception weights from {url}: cannot connect")
    assert _files(keras_home / "models") == []
