"""Streamlit's end-of-run Keras cleanup must not break a model being built in another thread
(views/common/keras_state.py): it once made the server's preload fail with 'The name "conv2d" is
used 2 times in the model'."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import keras
import pytest
import streamlit as st
from streamlit.runtime.scriptrunner import script_runner

import models
from views.common import keras_state, loaded

# The function as Keras ships it, from its other public name (which the server leaves alone), so
# this holds even when a page test in this process already ran the server's start.
_SHIPPED_CLEAR = keras.utils.clear_session


@pytest.fixture
def streamlit_as_shipped(monkeypatch):
    """keras.backend.clear_session as Keras ships it during the test, and as it was afterwards."""
    monkeypatch.setattr(keras.backend, "clear_session", _SHIPPED_CLEAR)


def build_while_streamlit_ends_runs(builds: int = 2) -> None:
    """Build Xception ``builds`` times while another thread runs what Streamlit runs after every
    script run, as a second session's reruns do on a real server; raises what the build raises."""
    card = models.get_card("xception.dfi2")
    stop = threading.Event()

    def end_runs():
        while not stop.is_set():
            script_runner._clean_problem_modules()

    thread = threading.Thread(target=end_runs, daemon=True)
    thread.start()
    try:
        for _ in range(builds):
            models.build_model(card)
    finally:
        stop.set()
        thread.join(30)


@pytest.mark.slow
def test_a_build_beside_streamlits_end_of_run_cleanup_succeeds(streamlit_as_shipped):
    keras_state.keep_keras_state()
    build_while_streamlit_ends_runs()  # before the fix: ValueError 'The name "conv2d" is used 2 times'


def test_layer_names_keep_counting_across_streamlits_cleanup(streamlit_as_shipped):
    keras_state.keep_keras_state()
    assert keras_state.keras_state_kept()
    first = keras.layers.Dense(1).name
    script_runner._clean_problem_modules()
    assert keras.layers.Dense(1).name != first
    # The other public name still clears for code that means it.
    keras.utils.clear_session(free_memory=False)
    assert keras.layers.Dense(1).name == "dense"


def test_the_server_keeps_keras_state_before_it_builds_anything(streamlit_as_shipped, monkeypatch):
    monkeypatch.setattr(loaded, "_preload", None)
    st.cache_resource.clear()
    built_with_state_kept = []
    monkeypatch.setattr(loaded.models, "default_model_ids", lambda settings=None: ["a.x"])
    monkeypatch.setattr(
        loaded.models,
        "load_model",
        lambda card_id, settings=None: SimpleNamespace(card=SimpleNamespace(input_size=4), predict=lambda crops: None),
    )
    monkeypatch.setattr(
        loaded.faces, "get_face_finder", lambda: built_with_state_kept.append(keras_state.keras_state_kept())
    )
    assert not keras_state.keras_state_kept()
    loaded.start_preload()
    assert loaded.wait_for_preload(10)
    assert built_with_state_kept == [True]
