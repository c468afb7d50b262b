"""The command line: exit codes, one-line errors, stdout purity, and the three commands.

Bad input runs as real subprocesses (``python -m core``, as a user runs it); the rest runs
in-process through ``core.__main__.main`` so TensorFlow and MTCNN start once for the module.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import cv2
import jsonschema
import pytest

from core.__main__ import main
from core.engine import report as report_io
from core.settings import PROJECT_ROOT

BAD_INPUTS = ["empty", "random_bytes", "text", "png", "truncated", "one_frame", "too_long"]


def run_cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("DFI_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "core", *map(str, args)],
        cwd=PROJECT_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got: {stderr!r}"
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(report_io.load_schema())


@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    """No weight file anywhere: every model is unavailable, so no test depends on shared data."""
    monkeypatch.delenv("DFI_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("DFI_PROJECT_WEIGHTS_DIR", str(tmp_path / "no-project-weights"))
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_exits_2_with_one_error_line(bad_clips, name):
    done = run_cli("analyze", bad_clips[name], "--json", "-")
    assert done.returncode == 2
    assert done.stdout == ""  # never a report, never a made-up score
    assert_one_error_line(done.stderr)


def test_unknown_model_id_exits_2_and_lists_the_valid_ones(face_clip):
    done = run_cli("analyze", face_clip, "--models", "meso4.df,nope.x")
    assert done.returncode == 2 and done.stdout == ""
    line = assert_one_error_line(done.stderr)
    assert "nope.x" in line and "meso4.df" in line


@pytest.mark.slow
def test_no_face_clip_exits_0_with_status_no_faces(synthetic_clips, validator, tmp_path):
    done = run_cli(
        "analyze", synthetic_clips["no_face"], "--json", "-", "--frames", "8", env={"DFI_CACHE_DIR": str(tmp_path)}
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    data = json.loads(done.stdout)  # stdout holds the report and nothing else
    validator.validate(data)
    assert data["status"] == "no_faces" and data["faces"] == []
    assert all(m["p_fake"] is None and m["verdict"] in ("NO_FACE", "UNAVAILABLE") for m in data["models"])


@pytest.mark.parametrize(
    "args, needle",
    [
        (["analyze", "x.mp4", "--frames", "0"], "--frames"),
        (["analyze", "x.mp4", "--frames", "many"], "--frames"),
        (["analyze", "x.mp4", "--models", ","], "--models"),
        (["analyze"], "CLIP"),
        (["fly"], "fly"),
        ([], "COMMAND"),
        (["analyze", "x.mp4", "--json", "/no/such/folder/r.json"], "folder does not exist"),
    ],
)
def test_bad_arguments_give_one_line(capsys, args, needle):
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert needle in assert_one_error_line(captured.err)


def test_bad_environment_value_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.setenv("DFI_MAX_FRAMES", "lots")
    assert main(["models"]) == 2
    assert "DFI_MAX_FRAMES" in assert_one_error_line(capsys.readouterr().err)


def test_unexpected_exception_is_one_internal_error_line(capsys, monkeypatch, face_clip):
    import core.engine.analysis

    def boom(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(core.engine.analysis, "analyze", boom)
    monkeypatch.delenv("DFI_DEBUG", raising=False)
    assert main(["analyze", str(face_clip)]) == 1
    line = assert_one_error_line(capsys.readouterr().err)
    assert line == "error: internal error: RuntimeError: boom second line"
    monkeypatch.setenv("DFI_DEBUG", "1")
    assert main(["analyze", str(face_clip)]) == 1
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.slow
def test_two_faces_give_two_tracks_and_all_outputs(synthetic_clips, validator, capsys, tmp_path, no_weights):
    clip = synthetic_clips["two_faces"]
    csv_path, video_path = tmp_path / "scores.csv", tmp_path / "annotated.mp4"
    code = main(
        ["analyze", str(clip), "--frames", "8", "--json", "-", "--csv", str(csv_path), "--annotate", str(video_path)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    validator.validate(data)
    assert data["status"] == "ok"
    assert sorted({f["track_id"] for f in data["faces"]}) == [0, 1]
    per_frame = {}
    for face in data["faces"]:
        per_frame.setdefault(face["frame_index"], []).append(face)
    assert len(per_frame) == 8 and all(len(v) == 2 for v in per_frame.values())
    # Each person stays on their own side of the frame: the tracker did not swap them.
    for track in (0, 1):
        xs = [f["box"][0] + f["box"][2] / 2 for f in data["faces"] if f["track_id"] == track]
        assert max(xs) < 320 or min(xs) > 320
    # No weights here: every model is unavailable, said once per model, with no score.
    assert all(m["verdict"] == "UNAVAILABLE" and m["message"] for m in data["models"])
    rows = list(csv.DictReader(csv_path.open()))
    assert {r["model_id"] for r in rows} == {m["id"] for m in data["models"]}
    cap = cv2.VideoCapture(str(video_path))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 640
    cap.release()


@pytest.mark.slow
def test_human_summary_and_several_clips_with_one_bad(synthetic_clips, bad_clips, capsys, no_weights, tmp_path):
    json_path = tmp_path / "all.json"
    code = main(
        ["analyze", str(synthetic_clips["face"]), str(bad_clips["text"]), "--frames", "4", "--json", str(json_path)]
    )
    captured = capsys.readouterr()
    assert code == 2  # one clip could not be analysed, the other was
    line = assert_one_error_line(captured.err)
    assert bad_clips["text"].name in line
    assert "faces found in 4/4 sampled frames, 1 person" in captured.out
    assert "UNAVAILABLE" in captured.out and "analysed in" in captured.out
    data = json.loads(json_path.read_text())
    assert isinstance(data, list) and [d["clip"]["name"] for d in data] == [synthetic_clips["face"].name]


def test_json_stdout_stays_clean_when_a_library_prints(synthetic_clips, capsys, monkeypatch, no_weights):
    import core.engine.analysis

    real = core.engine.analysis.analyze

    def noisy(*args, **kwargs):
        print("progress bar from some library")
        return real(*args, **kwargs)

    monkeypatch.setattr(core.engine.analysis, "analyze", noisy)
    assert main(["analyze", str(synthetic_clips["face"]), "--frames", "2", "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "ok"
    assert "progress bar" in captured.err


def test_models_lists_every_card_with_weights_state(capsys, no_weights):
    import models

    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [c.id for c in models.list_models()]
    xception = next(r for r in rows if r["id"] == "xception.dfi2")
    assert xception["weights"] == "missing" and not xception["sha256_ok"] and xception["default"]
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["ID", "FAMILY", "DEFAULT", "WEIGHTS", "SHA256", "LICENCE"]
    assert "missing" in table and "Apache-2.0" in table


@pytest.mark.shared
def test_models_reports_present_weights(capsys, monkeypatch, mesonet_weights_dir):
    monkeypatch.setenv("DFI_WEIGHTS_DIR", str(mesonet_weights_dir))
    assert main(["models", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["meso4.df"]["weights"] == "present" and rows["meso4.df"]["sha256_ok"]
    assert rows["meso4.df"]["path"].endswith("Meso4_DF.h5")


def test_download_of_a_card_without_weights_is_a_clear_error(capsys, no_weights):
    assert main(["models", "--download", "xception.dfi2"]) == 2
    assert "xception.dfi2" in assert_one_error_line(capsys.readouterr().err)


@pytest.mark.slow
def test_bench_json_has_the_contract_keys(face_clip, capsys, no_weights):
    code = main(
        [
            "bench",
            str(face_clip),
            "--frames",
            "4",
            "--repeat",
            "1",
            "--json",
            "--models",
            "meso4.df",
            "--random-weights",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert {"clip", "frames", "load_s", "total_s", "stages", "peak_rss_mb", "frames_per_s"} <= set(result)
    assert set(result["stages"]) == {"decode_s", "detect_s", "crop_s", "classify_s"}
    assert list(result["stages"]["classify_s"]) == ["meso4.df"]
    assert result["random_weights"] == ["meso4.df"] and result["frames"] == 4
    assert result["total_s"] > 0 and result["peak_rss_mb"] > 100
    # A fresh process paid imports, loading and a cold run; the stages ran partly side by side.
    assert result["first_verdict_s"] > result["total_s"] and result["overlap"] > 0
    # The human table says plainly that these weights are random.
    assert (
        main(["bench", str(face_clip), "--frames", "2", "--repeat", "1", "--models", "meso4.df", "--random-weights"])
        == 0
    )
    assert "RANDOM WEIGHTS" in capsys.readouterr().out


def test_bench_without_a_clip_or_samples_says_what_to_do(capsys, monkeypatch, tmp_path):
    from core.commands import bench

    monkeypatch.setattr(bench, "SAMPLES_DIR", tmp_path)
    assert main(["bench"]) == 2
    assert "no clip given" in assert_one_error_line(capsys.readouterr().err)


def test_commands_are_discovered_from_the_package():
    from core.__main__ import build_parser

    choices = build_parser()._subparsers._group_actions[0].choices
    assert {"analyze", "models", "bench"} <= set(choices)


@pytest.mark.shared
@pytest.mark.slow
def test_analyze_explain_writes_an_overlay_per_crop_and_detector(shared_data, tmp_path, capsys, monkeypatch):
    """`analyze CLIP --explain DIR` on a real shared clip with both families."""
    monkeypatch.setenv("DFI_WEIGHTS_DIR", str(shared_data / "mesonet" / "weights"))
    clip = shared_data / "clips" / "real" / "ffpp_youtube_c40_183.mp4"
    out = tmp_path / "heatmaps"
    code = main(["analyze", str(clip), "--frames", "4", "--models", "xception.dfi2,meso4.df", "--explain", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    written = sorted(p.name for p in out.iterdir())
    index = json.loads((out / "index.json").read_text())
    n = len(index["crops"])
    assert n >= 3 and f"heatmaps: {len(written)} files in {out}" in captured.out
    for crop in index["crops"]:
        assert set(crop["overlays"]) == {"xception.dfi2", "meso4.df"}
        for item in [crop["crop"]] + [o["file"] for o in crop["overlays"].values()]:
            image = cv2.imread(str(out / item))
            assert image is not None and image.shape[:2] == tuple(crop["size"])
    assert len(written) == 3 * n + 2 and {"index.json", "index.html"} <= set(written)
    # The JSON report on stdout stays pure with --explain.
    assert (
        main(
            [
                "analyze",
                str(clip),
                "--frames",
                "2",
                "--models",
                "meso4.df",
                "--json",
                "-",
                "--explain",
                str(tmp_path / "again"),
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["schema"] == "dfi.report/1"
    with capsys.disabled():
        print(f"\n--explain wrote {len(written)} files in {out}: " + " ".join(written))


def test_analyze_explain_into_a_file_is_a_usage_error(capsys, tmp_path):
    target = tmp_path / "a_file"
    target.write_text("x")  # refused before any clip is read
    assert main(["analyze", str(tmp_path / "clip.mp4"), "--explain", str(target)]) == 2
    assert "not a folder" in assert_one_error_line(capsys.readouterr().err)


@pytest.mark.slow
def test_bench_explain_reports_its_cost_per_model(capsys, no_weights):
    from core.settings import SAMPLES_DIR

    code = main(
        [
            "bench",
            str(SAMPLES_DIR / "astronaut_zoom.mp4"),
            "--frames",
            "4",
            "--repeat",
            "1",
            "--json",
            "--explain",
            "--no-fresh",
            "--models",
            "meso4.df",
            "--random-weights",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert set(result["stages"]) == {"decode_s", "detect_s", "crop_s", "classify_s"}  # contract kept
    assert list(result["explain_s"]) == ["meso4.df"] and result["explain_s"]["meso4.df"] > 0
    assert result["explain_crops"] == 4 and result["explain_ratio"]["meso4.df"] > 0
