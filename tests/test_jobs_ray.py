"""The Ray backend's faults, without a cluster: bad and silent addresses, a cluster that goes away
while a run is watched, and how a failed Ray job is put into words. (The real cluster runs in
tests/test_jobs_integration.py.)"""

from __future__ import annotations

import http.server
import json
import shlex
import threading
from types import SimpleNamespace

import pytest

from core.files import read_json
from core.jobs import service as jobs
from core.jobs.ray_cluster import RayClusterError, RayRunner, _failure_message, check_address
from core.settings import get_settings
from core.training.run_folder import new_run_dir, read_run
from tests.ray_cluster import free_port
from tests.test_train import make_dataset


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DFI_DATA_ROOT", str(tmp_path / "data"))
    return get_settings()


@pytest.fixture
def not_ray():
    """An HTTP server that answers, but is not a Ray dashboard."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    server.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_addresses_are_checked_with_plain_messages(not_ray):
    with pytest.raises(RayClusterError, match="give the Ray cluster's address"):
        check_address("  ")
    with pytest.raises(RayClusterError, match="Ray Client address"):
        check_address("ray://127.0.0.1:10001")
    with pytest.raises(RayClusterError, match="not an address like"):
        check_address("ftp://host:1")
    with pytest.raises(RayClusterError, match="does not answer"):
        check_address(f"127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(RayClusterError, match="not as a Ray cluster's job server"):
        check_address(not_ray)


def test_submitting_to_a_silent_cluster_makes_no_run(settings, monkeypatch):
    data = make_dataset(settings.data_root / "crops", {"train": (2, 2)})
    monkeypatch.setenv("DFI_RAY_ADDRESS", f"http://127.0.0.1:{free_port()}")  # the page's path: the setting
    with pytest.raises(RayClusterError, match="does not answer"):
        jobs.submit({"arch": "meso4", "tag": "x", "data": str(data)}, "ray", get_settings())
    with pytest.raises(RayClusterError, match="does not answer"):  # the command line's --ray
        jobs.submit(
            {"arch": "meso4", "tag": "x", "data": str(data)}, "ray", settings, address=f"http://127.0.0.1:{free_port()}"
        )
    assert not settings.runs_root.exists() or not any(settings.runs_root.iterdir())


def test_a_cluster_that_goes_away_leaves_the_run_as_it_was_with_a_note(settings):
    run_dir = new_run_dir(settings.runs_root, "meso4", "away")
    (run_dir / "spec.json").write_text(json.dumps({"arch": "meso4", "tag": "away", "data": "d"}))
    (run_dir / "status.json").write_text(json.dumps({"state": "running", "epoch": 2}))
    (run_dir / "job.json").write_text(
        json.dumps(
            {
                "backend": "ray",
                "address": f"http://127.0.0.1:{free_port()}",
                "submission_id": "dfi-x",
                "launched": "2030-01-01",
            }
        )
    )
    jobs.refresh_runs(settings)
    assert read_run(run_dir).state == "running"
    assert "does not answer" in read_json(run_dir / "job.json")["unreachable"]
    with pytest.raises(RayClusterError):
        jobs.cancel(run_dir.name, settings)


def test_failed_ray_jobs_are_put_in_plain_words():
    oom = SimpleNamespace(driver_exit_code=137, message="Job entrypoint command failed with exit code 137")
    assert _failure_message(oom, "Killed").startswith("ran out of memory")
    crash = SimpleNamespace(driver_exit_code=2, message="failed with exit code 2")
    assert _failure_message(crash, "x\nerror: no manifest.csv in d\n") == "no manifest.csv in d"
    other = SimpleNamespace(driver_exit_code=None, message="runtime env setup failed\nlong trace")
    assert _failure_message(other, "") == "the Ray job failed: runtime env setup failed"


def test_the_entrypoint_is_quoted_from_an_argument_list(tmp_path, monkeypatch):
    """A path with spaces and shell characters stays one argument in Ray's entrypoint string."""
    seen = {}

    class FakeClient:
        def submit_job(self, **kwargs):
            seen.update(kwargs)
            return kwargs["submission_id"]

    monkeypatch.setattr("core.jobs.ray_cluster.check_address", lambda a: a)
    monkeypatch.setattr("core.jobs.ray_cluster.client_for", lambda a: FakeClient())
    run_dir = new_run_dir(tmp_path / "runs", "meso4", "q")
    spec = tmp_path / "a b;$(rm -rf x)" / "spec.json"
    RayRunner("http://cluster:8265").submit(run_dir, ["/usr/bin/python3", "-m", "core", "train", "--spec", str(spec)])
    assert shlex.split(seen["entrypoint"]) == ["python", "-m", "core", "train", "--spec", str(spec)]
    assert seen["submission_id"] == f"dfi-{run_dir.name}"
    assert "tests" in seen["runtime_env"]["excludes"] and seen["runtime_env"]["working_dir"]
    assert read_json(run_dir / "job.json")["launched"]


def test_gpu_lists_from_nvidia_smi_and_their_summary():
    from core.jobs.devices import Devices, parse_nvidia_smi

    gpus = parse_nvidia_smi("0, NVIDIA H200, 143771\n1, NVIDIA H200, 143771\nNo devices were found\n")
    assert [(g.index, g.name, g.memory_mb) for g in gpus] == [(0, "NVIDIA H200", 143771), (1, "NVIDIA H200", 143771)]
    assert Devices("x", 16.0, 128.0, gpus).summary() == "2 GPUs (NVIDIA H200, 140 GB each), 16 CPUs, 128 GB memory"
    assert Devices("x", 2.0, None).summary().startswith("no GPU")
    assert parse_nvidia_smi("0, Tesla T4, [N/A]")[0].memory_mb is None
