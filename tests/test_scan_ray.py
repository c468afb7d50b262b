"""The scan on a real local Ray cluster (``ray start --head`` on 127.0.0.1, tests/ray_cluster.py):
the same p_fake as ``analyze``, a stop and a resume that analyse no clip twice, a damaged file as an
error row, a worker process killed in the middle of a scan, and an archive as the source."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from core.engine.analysis import analyze
from core.scan.engine import ScanRequest, run_scan
from core.scan.results import ResultsFolder, p_fake_column
from tests.ray_cluster import local_ray_cluster
from tests.scan_support import SHARED_CLIPS, link_clips

pytestmark = [pytest.mark.slow, pytest.mark.shared]
MODELS = ("xception.dfi2", "meso4.dfi2")


@pytest.fixture(scope="module")
def cluster(shared_data, tmp_path_factory):
    """A two-CPU cluster whose jobs see this test's settings (forwarded DFI_* variables)."""
    cache = tmp_path_factory.mktemp("cache")
    saved = os.environ.get("DFI_CACHE_DIR")
    os.environ["DFI_CACHE_DIR"] = str(cache)
    try:
        with local_ray_cluster(num_cpus=2) as address:
            yield address
    finally:
        if saved is None:
            os.environ.pop("DFI_CACHE_DIR", None)
        else:
            os.environ["DFI_CACHE_DIR"] = saved


def _journal_paths(out) -> Counter:
    return Counter(r["path"] for r in ResultsFolder(out).rows())


def test_stopped_then_resumed_scan_matches_analyze_and_lists_a_damaged_file(cluster, shared_data, tmp_path):
    src = tmp_path / "src"
    clips = link_clips(shared_data, src)
    (src / "fake" / "damaged.mp4").write_bytes(clips[-1].resolve().read_bytes()[:5000])
    out = tmp_path / "out"
    request = ScanRequest(out=out, src=src, model_ids=MODELS, frames=4, ray_address=cluster)

    stop = threading.Event()
    first = run_scan(request, progress=lambda p: p.done >= 2 and stop.set(), stop=stop)
    assert first.status == "stopped" and 2 <= len(_journal_paths(out)) < 9
    assert ResultsFolder(out).state()["status"] == "stopped"

    second = run_scan(request)
    assert second.status == "finished" and second.total == 9
    paths = _journal_paths(out)
    assert len(paths) == 9 and set(paths.values()) == {1}  # every clip once over both runs
    rows = {r["path"]: r for r in ResultsFolder(out).rows()}
    assert rows["fake/damaged.mp4"]["status"] == "error" and "damaged" in rows["fake/damaged.mp4"]["error"]
    for clip, name in zip(clips, SHARED_CLIPS):
        direct = {m.id: m.p_fake for m in analyze(clip, list(MODELS), frames=4).models}
        for model_id in MODELS:
            assert rows[name][p_fake_column(model_id)] == pytest.approx(direct[model_id], abs=1e-6), (name, model_id)
        report = ResultsFolder(out).report(rows[name]["sha256"])
        assert report["clip"]["name"] == clip.name and report["schema"] == "dfi.report/1"


def _scan_actors(address: str):
    from ray.util.state import list_actors

    return list_actors(address=address, filters=[("class_name", "=", "ScanActor")], detail=True)


def _actor_pids(address: str) -> list[int]:
    return [a.pid for a in _scan_actors(address) if a.state == "ALIVE" and a.pid]


def test_a_worker_killed_mid_scan_is_restarted_and_every_clip_is_counted_once(cluster, shared_data, tmp_path):
    src = tmp_path / "src"
    link_clips(shared_data, src, SHARED_CLIPS[:6])
    out = tmp_path / "out"
    request = ScanRequest(out=out, src=src, model_ids=("meso4.dfi2",), frames=4, ray_address=cluster)
    killed, restarts = [], []

    def kill_one(progress) -> None:
        # After the first clip is in, both actors are busy with the next ones: kill one of them.
        if progress.done >= 1 and not killed:
            pids = _actor_pids(cluster)
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
        elif killed and not restarts:
            restarts.extend(a.num_restarts for a in _scan_actors(cluster) if a.num_restarts)

    start = time.monotonic()
    summary = run_scan(request, progress=kill_one)
    assert killed, f"no scan actor was found to kill within {time.monotonic() - start:.0f} s"
    assert restarts == [1], "Ray did not restart the killed actor"
    assert summary.status == "finished" and summary.ok == 6 and summary.errors == 0
    paths = _journal_paths(out)
    assert len(paths) == 6 and set(paths.values()) == {1}
    assert killed[0] not in _actor_pids(cluster)  # the scan ended: its actors are gone, the killed one too


def test_evaluate_on_the_cluster_measures_the_same_scores_as_here(cluster, shared_data, tmp_path):
    from core.scan.evaluate import evaluate

    data = tmp_path / "labelled"
    link_clips(shared_data, data, [SHARED_CLIPS[0], SHARED_CLIPS[4]])
    here = evaluate(data, ["meso4.dfi2"], frames=4)
    there = evaluate(data, ["meso4.dfi2"], frames=4, ray_address=cluster)
    expected = {"clips": 2, "real": 1, "fake": 1, "analysed": 2, "no_face": 0, "errors": 0}
    assert here["counts"] == expected and there["counts"] == expected
    scores = {c["path"]: c["p_fake"]["meso4.dfi2"] for c in here["clips"]}
    for clip in there["clips"]:
        assert clip["p_fake"]["meso4.dfi2"] == pytest.approx(scores[clip["path"]], abs=1e-6)
    assert there["models"][0]["video"]["auc"] == here["models"][0]["video"]["auc"]
    scans = Path(os.environ["DFI_CACHE_DIR"]) / "scans"
    assert scans.is_dir() and not any(scans.iterdir())  # the cluster's RESULTS were temporary, and are gone


def test_an_archive_scans_on_the_cluster_like_analyze(cluster, shared_data, tmp_path):
    """A .zip with two shared clips, one of them twice: unpacked once on the head, each clip scored
    once, the copy a row of its own with the same scores."""
    import zipfile

    names = [SHARED_CLIPS[0], SHARED_CLIPS[4]]
    clips = link_clips(shared_data, tmp_path / "src", names)
    archive = tmp_path / "clips.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for clip, name in zip(clips, names):
            zf.write(clip.resolve(), arcname=name)
        zf.write(clips[0].resolve(), arcname="again/same.mp4")
    out = tmp_path / "out"
    result = run_scan(ScanRequest(out=out, src=archive, model_ids=("meso4.dfi2",), frames=4, ray_address=cluster))
    assert result.status == "finished" and result.total == 3
    rows = {r["path"]: r for r in ResultsFolder(out).rows()}
    assert set(rows) == {*names, "again/same.mp4"} and {r["status"] for r in rows.values()} == {"ok"}
    assert rows["again/same.mp4"]["sha256"] == rows[names[0]]["sha256"]
    for clip, name in zip(clips, names):
        direct = analyze(clip, ["meso4.dfi2"], frames=4).models[0].p_fake
        assert rows[name][p_fake_column("meso4.dfi2")] == pytest.approx(direct, abs=1e-6), name
    assert rows["again/same.mp4"][p_fake_column("meso4.dfi2")] == rows[names[0]][p_fake_column("meso4.dfi2")]
