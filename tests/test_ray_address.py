"""The server contacts only the Ray cluster it was configured with, with timeouts, polling logs
incrementally.

An address typed on the Train page made the server send requests anywhere and ship that address
the project and every ``DFI_*`` variable; now the page shows ``DFI_RAY_ADDRESS`` read-only and
offers the Ray runtime only when it is set. Every call to the cluster has a timeout, and the job's
log is appended to ``output.log`` instead of rewritten on every poll.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.errors import DFIError
from core.files import read_json
from core.jobs import ray_cluster
from core.jobs import service as jobs
from core.jobs.devices import Devices
from core.settings import get_settings
from core.training.run_folder import new_run_dir
from tests.test_app_train import FakeRunner, choose_data, open_train_page, texts
from tests.test_train import make_dataset
from views.train import actions
from views.train import state as train_state


class _Dashboard(http.server.BaseHTTPRequestHandler):
    """Answers /api/version as a Ray dashboard does; every other request waits ``hang_s`` first."""

    hang_s = 0.0

    def do_GET(self):  # noqa: N802 - the http.server API
        if self.path != "/api/version":
            time.sleep(self.hang_s)
        body = json.dumps({"ray_version": "2.60.0", "version": "4", "session_name": "test"}).encode()
        self.send_response(200 if self.path == "/api/version" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def dashboard():
    """A fake Ray dashboard on 127.0.0.1; yields (address, handler class to tune)."""
    handler = type("Dashboard", (_Dashboard,), {"hang_s": 0.0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def page_env(monkeypatch, tmp_path):
    """The Train page's environment (as tests/test_app_train.py), recording the runner's address."""
    st.cache_data.clear()
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DFI_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.delenv("DFI_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("DFI_RAY_ADDRESS", raising=False)
    addresses: list[str | None] = []

    def runner_for(backend, address=None):
        addresses.append(address)
        return FakeRunner()

    monkeypatch.setattr(jobs, "runner_for", runner_for)
    monkeypatch.setattr(train_state, "runtime_devices", lambda backend, address: Devices("Ray cluster", 4.0, 8.0))
    FakeRunner.outcome, FakeRunner.submitted = "running", []
    make_dataset(tmp_path / "data" / "good", {"train": (3, 3), "val": (1, 1)})
    yield SimpleNamespace(data=tmp_path / "data", addresses=addresses)
    st.cache_data.clear()


def _address_inputs(at: AppTest) -> list:
    return [t for t in at.text_input if "address" in str(t.label).lower() or "ray" in str(t.key)]


def test_the_page_has_no_address_field_and_submits_to_the_configured_cluster(page_env, dashboard, monkeypatch):
    address, _ = dashboard
    monkeypatch.setenv("DFI_RAY_ADDRESS", address)
    at = choose_data(open_train_page(), str(page_env.data / "good"))
    at.session_state["train_ray_address"] = "http://elsewhere.example:8265"  # what a visitor once typed
    at.radio(key=train_state.TRAIN_RUNTIME_KEY).set_value("ray").run()
    assert not at.exception
    assert not _address_inputs(at), "the page still takes a typed cluster address"
    assert address in texts(at.caption) + texts(at.markdown), "the configured address is not shown"
    at.button(key=train_state.TRAIN_START_KEY).click().run()
    assert not at.exception and "Started" in texts(at.success), texts(at.error)
    assert [a for a in page_env.addresses if a] == [address]  # the submit's runner (refreshes pass none)


def test_without_a_configured_cluster_the_page_offers_this_computer_only(page_env):
    at = choose_data(open_train_page(), str(page_env.data / "good"))
    runtimes = [r for r in at.radio if r.key == train_state.TRAIN_RUNTIME_KEY]
    assert not runtimes or list(runtimes[0].options) == ["This computer"]
    assert not _address_inputs(at)
    assert "DFI_RAY_ADDRESS" in texts(at.caption)


def test_a_page_submit_cannot_name_another_cluster(page_env):
    settings = get_settings()
    fields = dict(arch="meso4", init="random", tag="x", data=str(page_env.data / "good"), epochs=1, batch=2, lr=1e-3)
    with pytest.raises(TypeError):
        actions.TrainForm(**fields, backend="ray", address="http://elsewhere.example:8265")
    with pytest.raises(DFIError, match="DFI_RAY_ADDRESS"):
        actions.start_run(actions.TrainForm(**fields, backend="ray"), settings)
    assert not FakeRunner.submitted


def _ray_run(root: Path, address: str) -> Path:
    run_dir = new_run_dir(root, "meso4", "t")
    (run_dir / "status.json").write_text(json.dumps({"state": "running"}))
    (run_dir / "job.json").write_text(
        json.dumps({"backend": "ray", "address": address, "submission_id": "dfi-t", "launched": "2030-01-01"})
    )
    return run_dir


def test_a_cluster_that_stops_answering_mid_request_times_out(dashboard, tmp_path, monkeypatch):
    address, handler = dashboard
    handler.hang_s = 12.0  # accepts the request, then says nothing
    monkeypatch.setattr(ray_cluster, "REQUEST_TIMEOUT_S", 1.0, raising=False)
    run_dir = _ray_run(tmp_path / "runs", address)
    started = time.monotonic()
    ray_cluster.RayRunner(address).refresh(run_dir)
    assert time.monotonic() - started < 8, "a call to the cluster waited without a timeout"
    assert read_json(run_dir / "job.json")["unreachable"]


class _Status(str):
    def is_terminal(self) -> bool:
        return self in ("SUCCEEDED", "FAILED", "STOPPED")


def test_the_jobs_log_is_appended_not_rewritten(tmp_path, monkeypatch):
    logs = iter(["line 1\n", "line 1\nline 2\n", "line 1\nline 2\nline 3\n"])

    class Client:
        def get_job_info(self, submission_id):
            return SimpleNamespace(status=_Status("RUNNING"), message="")

        def get_job_logs(self, submission_id):
            return next(logs)

    monkeypatch.setattr(ray_cluster, "check_address", lambda address: address)
    monkeypatch.setattr(ray_cluster, "client_for", lambda address: Client())
    run_dir = _ray_run(tmp_path / "runs", "http://cluster:8265")
    runner = ray_cluster.RayRunner("http://cluster:8265")
    runner.refresh(run_dir)
    log = run_dir / "output.log"
    assert log.read_text() == "line 1\n"
    log.write_text("LINE 1\n")  # the part already copied is never written again
    runner.refresh(run_dir)
    runner.refresh(run_dir)
    assert log.read_text() == "LINE 1\nline 2\nline 3\n"
