"""AppTest for the Models page (views/detectors/page.py): the cards, a damaged weights file, downloads that
work and that cannot connect, uploads of the wrong and the right architecture, the default per family.

Each test checks that no exception reached the page. Weights are found only where each test says.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import models
from core.hashing import file_sha256
from core.settings import get_settings
from models.cards import card_from_dict, write_card
from models.networks.mesonet import build_meso4
from views.analyze import state as analyze_state
from views.detectors import state as detectors_state

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "views" / "detectors" / "page.py"
APP = ROOT / "app.py"
TIMEOUT = 240
FAMILIES = {name: arch.family for name, arch in models.ARCHITECTURES.items()}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    st.cache_data.clear()
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.setenv("DFI_PROJECT_WEIGHTS_DIR", str(tmp_path / "no-project-weights"))
    monkeypatch.delenv("DFI_WEIGHTS_DIR", raising=False)
    yield


def open_page() -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    assert not at.exception
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def _blocks(node):
    for child in getattr(node, "children", {}).values():
        yield child
        yield from _blocks(child)


def card_text(at: AppTest, card_id: str) -> str:
    """Everything written inside one card's box (its container's key ends its block id)."""
    key = f"-model_card_{card_id.replace('.', '_')}"
    found = [b for b in _blocks(at._tree) if getattr(getattr(b, "proto", None), "id", "").endswith(key)]
    assert found, f"no box for {card_id}"
    return "\n".join(str(e.value) for e in [*found[0].markdown, *found[0].error, *found[0].caption])


def user_card(card_id: str, weights_file: str, sha: str, url: str | None) -> None:
    """Write a MesoNet card in the user cards folder (a user card overrides a shipped one of its id)."""
    arch = card_id.split(".")[0]
    card = card_from_dict(
        {
            "id": card_id,
            "family": "mesonet",
            "architecture": arch,
            "display_name": f"Test {card_id}",
            "input_size": 256,
            "preprocess": "unit",
            "output": "p_real",
            "weights": {"file": weights_file, "sha256": sha, "url": url, "license": "test"},
            "threshold": 0.5,
            "band": [0.35, 0.65],
            "trained_on": "test",
            "metrics": {},
            "created": "2026-01-01",
            "description": "a card for a test",
        },
        "test",
        FAMILIES,
    )
    write_card(card, get_settings().user_cards_dir, FAMILIES)


def test_every_card_is_listed_with_its_weights_state_and_a_download_button():
    at = open_page()
    for card in models.list_models():
        text = card_text(at, card.id)
        assert card.display_name in text and "Weights not installed" in text and card.weights.license in text
    buttons = {b.key for b in at.button}
    assert {"download_weights_meso4.df", "download_weights_mesoinception4.f2f"} <= buttons
    assert "download_weights_xception.dfi2" not in buttons  # nothing to download yet
    assert "default" in card_text(at, "xception.dfi2")  # the only Xception is its family's default
    assert [s.label for s in at.selectbox][:2] == ["Default MesoNet detector", "Default Xception detector"]


def test_a_damaged_weights_file_is_named_plainly(tmp_path, monkeypatch):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "Meso4_DF.h5").write_bytes(b"a truncated download")
    monkeypatch.setenv("DFI_WEIGHTS_DIR", str(tmp_path / "w"))
    at = open_page()
    text = card_text(at, "meso4.df")
    assert "damaged or not the right one" in text
    assert "are damaged or a different file: sha256" in texts(at.error)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_an_offline_download_gives_a_clear_message_and_leaves_nothing(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/Meso4_DF.h5"
    user_card("meso4.df", "Meso4_DF.h5", "0" * 64, url)
    at = open_page()
    at.button(key="download_weights_meso4.df").click().run()
    assert not at.exception
    message = texts(at.error)
    assert f"The download did not work: could not download meso4.df weights from {url}: cannot connect" in message
    assert "Traceback" not in message
    assert not list((get_settings().cache_dir / "weights").glob("*"))


def test_a_download_is_hash_checked_and_then_installed(http_folder):
    folder, base = http_folder
    (folder / "good.h5").write_bytes(b"the right bytes" * 1000)
    (folder / "bad.h5").write_bytes(b"other bytes")
    user_card("meso4.good", "good.h5", file_sha256(folder / "good.h5"), f"{base}/good.h5")
    user_card("meso4.bad", "bad.h5", file_sha256(folder / "good.h5"), f"{base}/bad.h5")
    at = open_page()
    at.button(key="download_weights_meso4.bad").click().run()
    assert "has sha256" in texts(at.error) and "the file was discarded" in texts(at.error)
    at.button(key="download_weights_meso4.good").click().run()
    assert not at.exception
    assert "Weights installed" in card_text(at, "meso4.good")
    assert (get_settings().cache_dir / "weights" / "good.h5").is_file()
    assert not (get_settings().cache_dir / "weights" / "bad.h5").exists()


@pytest.fixture(scope="module")
def meso4_file(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("upload") / "meso4.weights.h5"
    build_meso4().save_weights(str(path))
    return path.read_bytes()


def test_weights_for_the_wrong_architecture_are_refused_plainly(meso4_file):
    at = open_page()
    at.selectbox(key=detectors_state.MODELS_ARCH_KEY).set_value("mesoinception4")
    at.file_uploader(key=f"{detectors_state.MODELS_UPLOAD_KEY}_0").set_value(
        ("meso4.weights.h5", meso4_file, "application/octet-stream")
    )
    at.run()
    assert not at.exception
    assert "meso4.weights.h5 cannot be used: these weights do not fit the MesoInception4 architecture" in texts(
        at.error
    )
    assert len(at.text_input) == 0  # no card form for a file that does not fit


def test_uploaded_weights_are_saved_with_a_card_and_offered_on_the_analyze_page(meso4_file):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    at.switch_page("views/detectors/page.py").run()
    at.selectbox(key=detectors_state.MODELS_ARCH_KEY).set_value("meso4")
    at.file_uploader(key=f"{detectors_state.MODELS_UPLOAD_KEY}_0").set_value(
        ("mine.weights.h5", meso4_file, "application/octet-stream")
    )
    at.run()
    assert "mine.weights.h5 fits Meso4 (Keras 3 weights file" in texts(at.success)
    at.text_input(key="models_tag").input("mine")
    at.text_input(key="models_display_name").input("My own Meso4")
    at.text_input(key="models_license").input("CC-BY-4.0")
    at.text_area(key="models_trained_on").input("my phone clips")
    at.button(key=detectors_state.MODELS_SAVE_KEY).click().run()
    assert not at.exception, at.exception
    assert "Saved **My own Meso4** as `meso4.mine`" in texts(at.success)
    card = models.get_card("meso4.mine")
    assert card.output == "p_fake" and card.weights.license == "CC-BY-4.0" and card.trained_on == "my phone clips"
    assert "Weights installed" in card_text(at, "meso4.mine")
    assert (
        len(at.text_input) == 0 and at.file_uploader[0].key == f"{detectors_state.MODELS_UPLOAD_KEY}_1"
    )  # ready for the next
    at.switch_page("views/analyze/page.py").run()
    assert "My own Meso4 (meso4.mine)" in at.multiselect(key=analyze_state.MODELS_KEY).options


def test_the_default_choice_is_saved_and_explained_when_its_weights_are_missing():
    at = open_page()
    at.selectbox(key=detectors_state.default_key("mesonet")).set_value("meso4.f2f").run()
    assert not at.exception
    saved = json.loads((get_settings().cache_dir / "defaults.json").read_text())
    assert saved == {"mesonet": "meso4.f2f"}
    assert "meso4.f2f is chosen, but its weights are not installed" in texts(at.caption)


@pytest.mark.shared
def test_the_default_choice_moves_the_default_badge_and_the_analyze_default(mesonet_weights_dir, monkeypatch):
    monkeypatch.setenv("DFI_WEIGHTS_DIR", str(mesonet_weights_dir))
    at = open_page()
    assert "default" in card_text(at, "mesoinception4.df")  # the best measured video AUC
    at.selectbox(key=detectors_state.default_key("mesonet")).set_value("meso4.f2f").run()
    assert "default" in card_text(at, "meso4.f2f") and "default" not in card_text(at, "mesoinception4.df")
    assert "meso4.f2f" in models.default_model_ids()
    at.selectbox(key=detectors_state.default_key("mesonet")).set_value("automatic").run()
    assert "mesoinception4.df" in models.default_model_ids()
