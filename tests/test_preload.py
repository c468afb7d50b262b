"""The server loads MTCNN and the default detectors in the background at start (views/common/loaded.py),
and the Analyze page says "Loading detectors…" meanwhile instead of blocking."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from views.common import loaded

APP = Path(__file__).resolve().parent.parent / "app.py"


@pytest.fixture
def fresh_preload(monkeypatch):
    """No preload started yet in this process (as on a fresh server), restored afterwards."""
    monkeypatch.setattr(loaded, "_preload", None)
    st.cache_data.clear()
    st.cache_resource.clear()


def test_preload_runs_once_and_fills_the_caches_the_pages_use(fresh_preload, monkeypatch):
    calls, release = [], threading.Event()

    class Warmed:
        card = SimpleNamespace(input_size=4)

        def predict(self, crops):
            calls.append(f"predict {len(crops)}")

    def load_model(card_id, settings=None):
        release.wait(10)  # still loading while the test looks
        calls.append(card_id)
        return Warmed()

    monkeypatch.setattr(loaded.models, "default_model_ids", lambda settings=None: ["a.x", "b.y"])
    monkeypatch.setattr(loaded.models, "load_model", load_model)
    monkeypatch.setattr(loaded.faces, "get_face_finder", lambda: calls.append("mtcnn"))
    first = loaded.start_preload()
    assert loaded.start_preload() is first  # once per process
    assert not loaded.preload_done() and not loaded.is_loaded("a.x")
    release.set()
    assert loaded.wait_for_preload(10)
    assert calls == ["mtcnn", "a.x", "predict 1", "predict 2", "b.y", "predict 1", "predict 2"]
    assert loaded.is_loaded("a.x") and loaded.is_loaded("b.y")


def test_a_detector_that_cannot_load_does_not_stop_the_others(fresh_preload, monkeypatch):
    from core.errors import DFIError

    def load_model(card_id, settings=None):
        if card_id == "a.x":
            raise DFIError("no weights for a.x")
        return SimpleNamespace(card=SimpleNamespace(input_size=4), predict=lambda crops: None)

    monkeypatch.setattr(loaded.models, "default_model_ids", lambda settings=None: ["a.x", "b.y"])
    monkeypatch.setattr(loaded.models, "load_model", load_model)
    monkeypatch.setattr(loaded.faces, "get_face_finder", lambda: None)
    loaded.start_preload()
    assert loaded.wait_for_preload(10)
    assert not loaded.is_loaded("a.x") and loaded.is_loaded("b.y")


def test_the_start_page_says_loading_detectors_without_waiting(fresh_preload, monkeypatch):
    state = loaded.Preload([])  # started (app.py's call returns it) but not finished
    monkeypatch.setattr(loaded, "_preload", state)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert any("Loading detectors" in str(c.value) for c in at.caption)
    state.done.set()
    at.run()
    assert not at.exception
    assert not any("Loading detectors" in str(c.value) for c in at.caption)
