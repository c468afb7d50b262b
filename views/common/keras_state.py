"""Keep Keras' layer-name counters when Streamlit ends a script run.

Streamlit ends every script run by calling ``keras.backend.clear_session()`` (``_clean_problem_modules``
in streamlit/runtime/scriptrunner/script_runner.py), meant for apps that build a model on every run.
Keras 3 implements it by replacing its thread-local global state object, which resets the state of
*every* thread at once. So when one session's run ended while a detector was being built in another
thread (the preload at server start, or a second session), that build's automatically named layers
(Xception's unnamed shortcut convolutions) started again from "conv2d" halfway through, and the build
failed with 'The name "conv2d" is used 2 times in the model'. The call also spent about 0.17 s on
garbage collection after every run (measured with both shipped detectors loaded, 2-core CPU).

This server builds each model once per process and keeps it (views/common/loaded.py), so there is
nothing for that call to clean: in the server process it does nothing. ``keras.utils.clear_session``
(the same function under its other public name) is left as it is, for code that really means it.
"""

from __future__ import annotations


def _kept_clear_session(*args, **kwargs) -> None:
    """Does nothing in this server: see views/common/keras_state.py."""


def keep_keras_state() -> None:
    """Make ``keras.backend.clear_session`` (the name Streamlit calls) do nothing in this process."""
    import keras

    keras.backend.clear_session = _kept_clear_session


def keras_state_kept() -> bool:
    """Whether :func:`keep_keras_state` has run in this process."""
    import keras

    return keras.backend.clear_session is _kept_clear_session
