"""The scan engine on this computer: sources (folder, list, archive and their hostile cases), the
RESULTS folder, resume and duplicates (with a recording backend, no TensorFlow), then real scans of
shared clips with the process pool, and the command line's exit codes."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from core.__main__ import main
from core.engine.analysis import analyze
from core.scan.engine import ScanError, ScanRequest, execute, run_scan
from core.scan.results import JOURNAL, ResultsFolder, p_fake_column
from core.scan.sources import SourceError, expand
from core.settings import get_settings
from tests.scan_support import RecordingBackend, link_clips

MODELS = ("meso4.dfi2",)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    return get_settings()


def test_a_folder_gives_its_videos_recursively_and_skips_the_rest(tmp_path, settings):
    _write(tmp_path / "src" / "a.mp4", b"1")
    _write(tmp_path / "src" / "deep" / "b.MOV", b"2")
    _write(tmp_path / "src" / "notes.txt", b"not a clip")
    _write(tmp_path / "src" / ".hidden" / "c.mp4", b"3")
    items = expand(tmp_path / "src", tmp_path / "unpack", settings)
    assert [i.name for i in items] == ["a.mp4", "deep/b.MOV"]
    with pytest.raises(SourceError, match="holds no video clips"):
        expand(_write(tmp_path / "empty" / "x.txt", b"").parent, tmp_path / "unpack", settings)
    with pytest.raises(SourceError, match="does not exist"):
        expand(tmp_path / "nowhere", tmp_path / "unpack", settings)


def test_a_list_file_is_read_relative_to_itself(tmp_path, settings):
    _write(tmp_path / "clips" / "a.mp4", b"1")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# my clips\nclips/a.mp4\n\n{tmp_path}/clips/missing.mp4  # gone\n")
    items = expand(listing, tmp_path / "unpack", settings)
    assert [(i.path, i.name) for i in items] == [
        (tmp_path / "clips" / "a.mp4", "clips/a.mp4"),
        (tmp_path / "clips" / "missing.mp4", f"{tmp_path}/clips/missing.mp4"),
    ]


def test_archives_unpack_their_videos_and_hostile_ones_are_refused(tmp_path, settings):
    unpack = tmp_path / "unpack"
    unpack.mkdir()
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("set/real/a.mp4", b"clip a")
        zf.writestr("readme.txt", b"not a clip")
    items = expand(tmp_path / "a.zip", unpack, settings)
    assert [(i.name, i.path.read_bytes()) for i in items] == [("set/real/a.mp4", b"clip a")]
    assert items[0].path.is_relative_to(unpack)

    with zipfile.ZipFile(tmp_path / "escape.zip", "w") as zf:
        zf.writestr("../../evil.mp4", b"x")
    with pytest.raises(SourceError, match="points outside the archive"):
        expand(tmp_path / "escape.zip", tmp_path / "unpack2", settings)
    assert not (tmp_path / "evil.mp4").exists()

    with tarfile.open(tmp_path / "link.tar", "w") as tf:
        info = tarfile.TarInfo("clip.mp4")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(SourceError, match="holds a link"):
        expand(tmp_path / "link.tar", unpack, settings)

    small = get_settings(max_upload_mb=1)
    with tarfile.open(tmp_path / "big.tar.gz", "w:gz") as tf:
        data = b"\0" * (2 * 1024 * 1024)
        info = tarfile.TarInfo("big.mp4")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    with pytest.raises(SourceError, match="larger than the 1 MB limit"):
        expand(tmp_path / "big.tar.gz", unpack, small)

    _write(tmp_path / "broken.zip", b"PK not really")
    with pytest.raises(SourceError, match="not a readable archive"):
        expand(tmp_path / "broken.zip", unpack, settings)


def test_a_torn_last_line_is_ignored_and_the_tables_match_the_journal(tmp_path):
    folder = ResultsFolder(tmp_path / "out")
    row = {"path": "a.mp4", "sha256": "ab", "status": "ok", p_fake_column("m"): 0.25, "seconds": 1.0}
    folder.record(row, {"schema": "dfi.report/1"})
    with open(folder.journal, "a") as fh:
        fh.write('{"path": "b.mp4", "sha2')  # a crash in the middle of a write
    assert [r["path"] for r in folder.rows()] == ["a.mp4"]
    assert folder.report("ab") == {"schema": "dfi.report/1"}
    folder.write_tables(["m"])
    table = pd.read_parquet(folder.root / "results.parquet")
    assert list(table["path"]) == ["a.mp4"] and table[p_fake_column("m")].tolist() == [0.25]
    assert pd.read_csv(folder.root / "results.csv")["status"].tolist() == ["ok"]


def _clip_folder(root: Path) -> Path:
    for name, data in {"a.mp4": b"aaa", "b.mp4": b"bbb", "sub/a_copy.mp4": b"aaa", "c.mp4": b"ccc"}.items():
        _write(root / name, data)
    _write(root / "bad.mp4", b"BAD bytes")
    return root


def test_the_same_bytes_twice_are_analysed_once_and_a_bad_clip_is_a_row(tmp_path, settings):
    seen = []
    request = ScanRequest(out=tmp_path / "out", src=_clip_folder(tmp_path / "src"), model_ids=MODELS)
    summary = execute(request, RecordingBackend(seen), settings)
    assert sorted(seen) == ["a.mp4", "b.mp4", "bad.mp4", "c.mp4"]  # not sub/a_copy.mp4
    rows = {r["path"]: r for r in ResultsFolder(tmp_path / "out").rows()}
    assert len(rows) == 5 and rows["sub/a_copy.mp4"]["same_as"] == "a.mp4"
    assert rows["sub/a_copy.mp4"][p_fake_column(MODELS[0])] == rows["a.mp4"][p_fake_column(MODELS[0])]
    assert rows["bad.mp4"]["status"] == "error" and rows["bad.mp4"]["error"] == "bad.mp4 is damaged"
    assert (summary.status, summary.total, summary.ok, summary.errors, summary.analysed_now) == ("finished", 5, 4, 1, 4)
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert sorted(table["path"]) == sorted(rows) and set(table["status"]) == {"ok", "error"}


def test_a_stopped_scan_resumes_without_analysing_any_clip_twice(tmp_path, settings):
    src = _clip_folder(tmp_path / "src")
    request = ScanRequest(out=tmp_path / "out", src=src, model_ids=MODELS)
    seen = []
    first = execute(request, RecordingBackend(seen, stop_after=2), settings)
    assert first.status == "stopped" and len(seen) == 2
    assert ResultsFolder(tmp_path / "out").state()["status"] == "stopped"
    second = execute(request, RecordingBackend(seen), settings)
    assert second.status == "finished" and second.analysed_now == 2
    assert sorted(seen) == ["a.mp4", "b.mp4", "bad.mp4", "c.mp4"]  # each once, over both runs
    journal = (tmp_path / "out" / JOURNAL).read_text().splitlines()
    assert sorted(json.loads(line)["path"] for line in journal) == sorted(
        ["a.mp4", "b.mp4", "bad.mp4", "c.mp4", "sub/a_copy.mp4"]
    )
    # A third run finds everything done; a new path to known bytes is answered from RESULTS.
    _write(src / "later" / "b_again.mp4", b"bbb")
    third = execute(request, RecordingBackend(seen), settings)
    assert third.analysed_now == 0 and len(seen) == 4
    again = next(r for r in ResultsFolder(tmp_path / "out").rows() if r["path"] == "later/b_again.mp4")
    assert again["same_as"] == "b.mp4" and again["status"] == "ok"


def test_results_of_other_options_are_not_mixed(tmp_path, settings):
    src = _clip_folder(tmp_path / "src")
    execute(ScanRequest(out=tmp_path / "out", src=src, model_ids=MODELS), RecordingBackend([]), settings)
    with pytest.raises(ScanError, match="holds a scan with other models"):
        execute(ScanRequest(out=tmp_path / "out", src=src, model_ids=MODELS, frames=8), RecordingBackend([]), settings)


def test_the_command_line_refuses_bad_input_with_one_line(tmp_path, capsys):
    _write(tmp_path / "src" / "a.mp4", b"1")
    (tmp_path / "file").write_text("x")
    cases = [
        ([str(tmp_path / "nowhere"), "--out", str(tmp_path / "o1")], "does not exist"),
        ([str(tmp_path / "src"), "--out", str(tmp_path / "file")], "it is a file"),
        ([str(tmp_path / "src"), "--out", str(tmp_path / "no" / "such" / "o")], "its folder does not exist"),
        ([str(tmp_path / "src"), "--out", str(tmp_path / "o2"), "--models", "nope.x"], "nope.x"),
        ([str(tmp_path / "src"), "--out", str(tmp_path / "o3"), "--workers", "0"], "out of range"),
    ]
    for args, words in cases:
        assert main(["scan", *args, "--no-progress"]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err


@pytest.mark.shared
@pytest.mark.slow
def test_two_local_workers_scan_an_archive_like_analyze(shared_data, tmp_path, monkeypatch, capsys):
    """Two worker processes over a .tar.gz holding 3 shared clips, one of them twice, and a damaged one."""
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    clips = link_clips(shared_data, tmp_path / "src", ["real/ffpp_youtube_c40_183.mp4", "fake/dfdc_adylbeequz.mp4"])
    archive = tmp_path / "clips.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for clip in clips:
            tf.add(clip.resolve(), arcname=clip.relative_to(tmp_path / "src").as_posix())
        tf.add(clips[0].resolve(), arcname="again/same.mp4")
        damaged = _write(tmp_path / "damaged.mp4", clips[1].resolve().read_bytes()[:4000])
        tf.add(damaged, arcname="fake/damaged.mp4")
    out = tmp_path / "out"
    code = main(["scan", str(archive), "--out", str(out), "--models", "meso4.dfi2", "--frames", "4", "--workers", "2"])
    assert code == 0
    assert "finished: 4 clips, 3 scored, 0 without a face, 1 failed; 3 analysed now" in capsys.readouterr().out
    folder = ResultsFolder(out)
    rows = {r["path"]: r for r in folder.rows()}
    assert folder.state()["workers"] == 2 and set(rows) == {
        "real/ffpp_youtube_c40_183.mp4",
        "fake/dfdc_adylbeequz.mp4",
        "again/same.mp4",
        "fake/damaged.mp4",
    }
    assert rows["fake/damaged.mp4"]["status"] == "error" and "damaged" in rows["fake/damaged.mp4"]["error"]
    for clip in clips:
        row = rows[clip.relative_to(tmp_path / "src").as_posix()]
        direct = analyze(clip, ["meso4.dfi2"], frames=4).models[0].p_fake
        assert row[p_fake_column("meso4.dfi2")] == pytest.approx(direct, abs=1e-6)
        report = folder.report(row["sha256"])
        assert report["schema"] == "dfi.report/1" and report["models"][0]["p_fake"] == pytest.approx(direct, abs=1e-6)


@pytest.mark.shared
@pytest.mark.slow
def test_one_worker_runs_in_this_process_and_a_stop_keeps_what_is_done(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    link_clips(shared_data, tmp_path / "src", ["real/ffpp_youtube_c40_183.mp4", "fake/dfdc_adylbeequz.mp4"])
    stop = threading.Event()
    request = ScanRequest(out=tmp_path / "out", src=tmp_path / "src", model_ids=MODELS, frames=4, workers=1)
    first = run_scan(request, progress=lambda p: p.done and stop.set(), stop=stop)
    assert (first.status, first.analysed_now) == ("stopped", 1)
    second = run_scan(request)
    assert (second.status, second.analysed_now, second.ok) == ("finished", 1, 2)
