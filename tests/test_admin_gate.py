"""The admin gate (views/common/admin.py) in front of actions that change the server.

AppTest runs have no HTTP request, so they count as someone using the server itself (open): the
other page tests keep working unchanged. A visitor is simulated by making the request non-local
(``admin.request_is_local``); the rule that decides locality is tested on its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.jobs import service as jobs
from tests.test_app_train import TIMEOUT, FakeRunner, choose_data, open_train_page, texts
from tests.test_train import make_dataset
from views.common import admin
from views.detectors import state as detectors_state
from views.train import state as train_state

APP = Path(__file__).resolve().parent.parent / "app.py"
TOKEN = "correct horse battery staple"


@pytest.mark.parametrize(
    "headers, peer_loopback, local",
    [
        ({}, False, True),  # no HTTP request: an in-process run
        ({"Host": "localhost:8501"}, True, True),
        ({"Host": "127.0.0.1:8501"}, True, True),
        ({"Host": "[::1]:8501"}, True, True),
        ({"Host": "192.168.1.20:8501"}, False, False),  # someone on the network
        ({"Host": "localhost:8501"}, False, False),  # a forged Host from elsewhere
        ({"Host": "evil.example:8501"}, True, False),  # a page elsewhere, its name resolving to 127.0.0.1
        ({"Host": "127.0.0.1:8501", "X-Forwarded-For": "203.0.113.9"}, True, False),  # a proxy here
        ({"host": "localhost", "forwarded": "for=203.0.113.9"}, True, False),
    ],
)
def test_who_counts_as_using_the_server_itself(headers, peer_loopback, local):
    assert admin.is_local_request(headers, peer_loopback) is local


@pytest.fixture
def visitor(monkeypatch):
    """The page is served to someone else, not used on the server itself."""
    monkeypatch.setattr(admin, "request_is_local", lambda: False)


@pytest.fixture
def train_env(monkeypatch, tmp_path):
    st.cache_data.clear()
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DFI_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.delenv("DFI_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("DFI_RAY_ADDRESS", raising=False)
    monkeypatch.setattr(jobs, "runner_for", lambda backend, address=None: FakeRunner())
    FakeRunner.outcome, FakeRunner.submitted = "running", []
    make_dataset(tmp_path / "data" / "good", {"train": (3, 3), "val": (1, 1)})
    yield tmp_path / "data"
    st.cache_data.clear()


def _train_page(secrets: dict | None = None) -> AppTest:
    if not secrets:
        return open_train_page()
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for name, value in secrets.items():
        at.secrets[name] = value
    at.run()
    at.switch_page("views/train/page.py").run()
    assert not at.exception
    return at


def _start(at: AppTest):
    return at.button(key=train_state.TRAIN_START_KEY)


def test_on_the_server_itself_training_starts_as_before(train_env):
    at = choose_data(open_train_page(), str(train_env / "good"))
    assert not _start(at).disabled
    _start(at).click().run()
    assert "Started" in texts(at.success) and FakeRunner.submitted


def test_a_visitor_without_a_configured_gate_cannot_start_or_cancel(train_env, visitor, monkeypatch):
    at = choose_data(open_train_page(), str(train_env / "good"))
    assert _start(at).disabled, "a visitor can start training"
    assert "Only whoever runs this server can start training" in texts(at.info)
    assert not [t for t in at.text_input if t.key == admin.ADMIN_TOKEN_KEY]  # nothing to type: closed
    # A run started on the server itself shows its details, but no Cancel for the visitor.
    monkeypatch.setattr(admin, "request_is_local", lambda: True)
    local = choose_data(open_train_page(), str(train_env / "good"))
    _start(local).click().run()
    monkeypatch.setattr(admin, "request_is_local", lambda: False)
    at.run()
    assert "Training: epoch 1" in texts(at.markdown)
    assert not [b for b in at.button if b.key == train_state.TRAIN_CANCEL_KEY]


def test_the_right_token_unlocks_a_wrong_one_is_refused(train_env, visitor):
    at = choose_data(_train_page({"admin_token": TOKEN}), str(train_env / "good"))
    assert _start(at).disabled and "enter this server's admin token" in texts(at.info)
    at.text_input(key=admin.ADMIN_TOKEN_KEY).set_value("guess").run()
    assert "not this server's admin token" in texts(at.error)
    assert _start(at).disabled
    at.text_input(key=admin.ADMIN_TOKEN_KEY).set_value(TOKEN).run()
    assert not at.exception and not _start(at).disabled
    assert not [t for t in at.text_input if t.key == admin.ADMIN_TOKEN_KEY]  # unlocked: no field any more
    _start(at).click().run()
    assert "Started" in texts(at.success) and FakeRunner.submitted


def test_a_short_token_opens_nothing(train_env, visitor):
    at = choose_data(_train_page({"admin_token": "1234"}), str(train_env / "good"))
    assert _start(at).disabled and "Only whoever runs this server" in texts(at.info)


def test_with_sign_in_only_listed_admins_may(train_env, visitor, monkeypatch):
    auth = {"redirect_uri": "http://app.example/oauth2callback", "cookie_secret": "s" * 32}
    secrets = {"auth": auth, "admins": ["Alice@example.org"], "admin_token": TOKEN}
    monkeypatch.setattr(admin, "signed_in_email", lambda: None)
    at = choose_data(_train_page(secrets), str(train_env / "good"))
    assert _start(at).disabled and "sign in as an admin" in texts(at.info)
    assert [b for b in at.button if b.key == admin.ADMIN_SIGN_IN_KEY]
    assert not [t for t in at.text_input if t.key == admin.ADMIN_TOKEN_KEY]  # [auth] wins over the token
    monkeypatch.setattr(admin, "signed_in_email", lambda: "mallory@example.org")
    at.run()
    assert _start(at).disabled and "mallory@example.org is not one" in texts(at.info)
    monkeypatch.setattr(admin, "signed_in_email", lambda: "alice@example.org")
    at.run()
    assert not _start(at).disabled


def test_a_visitor_reads_the_detectors_page_but_changes_nothing(visitor, tmp_path, monkeypatch):
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    at.switch_page("views/detectors/page.py").run()
    assert not at.exception
    assert "Only whoever runs this server can change the detectors" in texts(at.info)
    assert at.selectbox(key=detectors_state.default_key("mesonet")).disabled
    assert not at.get("file_uploader"), "a visitor can upload weights"
    assert not [b for b in at.button if str(b.key).startswith("download_weights_")]
    assert at.get("container"), "the model cards are still shown"


def test_a_visitor_can_still_analyse_clips(visitor):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()  # the Analyze page is the default
    assert not at.exception
    assert at.get("file_uploader"), "a visitor cannot upload a clip"
    assert not [i for i in at.info if "whoever runs this server" in str(i.value)]


def test_loopback_peer_as_a_dual_stack_server_sees_it():
    """The README's start command binds every interface; IPv4 loopback then arrives IPv4-mapped."""
    from views.common.admin import peer_is_loopback

    assert peer_is_loopback(None) and peer_is_loopback("::ffff:127.0.0.1") and peer_is_loopback("::1")
    assert not peer_is_loopback("::ffff:10.0.0.7") and not peer_is_loopback("192.168.1.4")
    assert not peer_is_loopback("not an address")
