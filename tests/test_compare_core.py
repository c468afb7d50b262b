"""The Compare page's plain-Python parts: folders (core.evaluation.compare), tables and CSV
(views.figures.compare_tables) and figures (views.figures.compare_charts), on an evaluation whose scores are known."""

from __future__ import annotations

import csv
import io
import json
import os

import numpy as np
import pytest

from core.evaluation.compare import FolderError, folder_fingerprint, labelled_clips, labelled_folders, resolve_inside
from core.scan.evaluate import evaluate
from tests.compare_fakes import FAKE, REAL, SCORES, FakeAnalysis, make_labelled_folder
from views.figures.compare_charts import calibration_bins, calibration_figure, clip_at_point, roc_figure, scatter_figure
from views.figures.compare_tables import clip_table, clips_csv, disagreements, metrics_table

MODELS = ["meso4.df", "mesoinception4.df"]


@pytest.fixture
def result(tmp_path, monkeypatch):
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    FakeAnalysis(SCORES).install(monkeypatch)
    folder = make_labelled_folder(tmp_path, "set", REAL, FAKE)
    return evaluate(folder, MODELS, frames=4)


# --- folders -------------------------------------------------------------------------------------


def test_labelled_folders_are_found_at_any_depth_but_not_without_clips(tmp_path):
    make_labelled_folder(tmp_path, "a", ["x"], [])
    make_labelled_folder(tmp_path / "deep", "b", [], ["y"])
    (tmp_path / "crops" / "real").mkdir(parents=True)
    (tmp_path / "crops" / "real" / "face.png").write_bytes(b"png")  # images, not clips
    make_labelled_folder(tmp_path / ".hidden", "c", ["z"], [])
    assert labelled_folders(tmp_path) == [tmp_path / "a", tmp_path / "deep" / "b"]
    make_labelled_folder(tmp_path.parent, tmp_path.name, ["top"], [])
    assert labelled_folders(tmp_path)[0] == tmp_path  # the root itself counts
    assert labelled_folders(tmp_path / "missing") == []


def test_resolve_inside_accepts_folders_in_the_root_and_refuses_the_rest(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    inner = make_labelled_folder(root, "set", ["a"], ["b"])
    make_labelled_folder(tmp_path, "outside", ["c"], [])
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "empty").mkdir()
    assert resolve_inside(root, "set") == inner.resolve()
    assert resolve_inside(root, str(inner)) == inner.resolve()
    for text, words in (
        ("../outside", "is outside the data folder"),
        (str(outside), "is outside the data folder"),
        ("link", "is outside the data folder"),
        ("nope", "there is no folder nope"),
        ("empty", "has no video clips"),
        ("  ", "type the name"),
    ):
        with pytest.raises(FolderError, match=words):
            resolve_inside(root, text)


def test_symlinked_clips_inside_an_accepted_folder_are_used(tmp_path):
    elsewhere = make_labelled_folder(tmp_path, "store", ["a"], ["b"])
    subset = tmp_path / "root" / "subset"
    (subset / "real").mkdir(parents=True)
    (subset / "real" / "a.mp4").symlink_to(elsewhere / "real" / "a.mp4")
    assert resolve_inside(tmp_path / "root", "subset") == subset
    assert [(p.name, y) for p, y in labelled_clips(subset)] == [("a.mp4", 0)]


def test_fingerprint_changes_with_content_name_label_and_target_only(tmp_path):
    folder = make_labelled_folder(tmp_path, "set", ["a", "b"], ["c"])
    first = folder_fingerprint(labelled_clips(folder), folder)
    assert folder_fingerprint(labelled_clips(folder), folder) == first
    clip = folder / "real" / "a.mp4"
    stat = clip.stat()
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    touched = folder_fingerprint(labelled_clips(folder), folder)
    assert touched != first
    (folder / "real" / "b.mp4").rename(folder / "fake" / "b.mp4")  # re-labelled
    relabelled = folder_fingerprint(labelled_clips(folder), folder)
    assert relabelled not in (first, touched)
    (folder / "fake" / "c.mp4").write_bytes(b"other content, other size")
    assert folder_fingerprint(labelled_clips(folder), folder) != relabelled


# --- tables and CSV ------------------------------------------------------------------------------


def test_metrics_table_sets_models_side_by_side_with_hand_computed_values(result):
    rows = {row["Measure"]: row for row in metrics_table(result)}
    auc = rows["Video AUC (1 = perfect, 0.5 = coin toss)"]
    assert (auc["meso4.df"], auc["mesoinception4.df"]) == ("1.000", "0.778")  # 9/9 and 7/9 pairs
    acc = rows["Accuracy at the model's threshold"]
    assert acc["meso4.df"] == "1.000 (at 0.50)" and acc["mesoinception4.df"] == "0.667 (at 0.50)"
    assert rows["Clips scored"]["meso4.df"] == "6 of 8"
    assert (
        rows["Real called real / real called fake / fake missed / fake caught"]["mesoinception4.df"] == "2 / 1 / 1 / 2"
    )
    assert disagreements(result, *MODELS) == 2  # r2 and f1 sit on opposite sides of 0.5


def test_unavailable_model_has_a_column_that_says_so(tmp_path, monkeypatch):
    FakeAnalysis(SCORES, unavailable={"mesoinception4.df": "weights missing"}).install(monkeypatch)
    folder = make_labelled_folder(tmp_path, "set", REAL, FAKE)
    table = metrics_table(evaluate(folder, MODELS, frames=4))
    assert all(row["mesoinception4.df"] == "unavailable" for row in table)
    assert table[1]["meso4.df"] == "1.000"


def test_clip_table_and_csv_keep_the_clips_without_a_score(result):
    rows = {row["Clip"]: row for row in clip_table(result)}
    assert len(rows) == 8
    assert (
        rows["real/r_noface.mp4"]["Result"] == "no face found" and rows["real/r_noface.mp4"]["meso4.df p_fake"] is None
    )
    assert rows["fake/f_broken.mp4"]["Result"] == "failed" and "not a video file" in rows["fake/f_broken.mp4"]["Note"]
    assert rows["fake/f2.mp4"]["mesoinception4.df p_fake"] == pytest.approx(0.9)
    parsed = list(csv.DictReader(io.StringIO(clips_csv(result))))
    assert [r["path"] for r in parsed] == [r["path"] for r in result["clips"]]
    by_path = {r["path"]: r for r in parsed}
    assert by_path["real/r2.mp4"]["p_fake:mesoinception4.df"] == "0.700000"
    assert by_path["real/r2.mp4"]["verdict:mesoinception4.df"] == "FAKE"
    assert by_path["fake/f_broken.mp4"]["p_fake:meso4.df"] == "" and by_path["fake/f_broken.mp4"]["status"] == "error"


# --- figures -------------------------------------------------------------------------------------


def test_roc_figure_has_one_curve_per_model_from_the_result(result):
    fig = roc_figure(result)
    curves = [t for t in fig.data if t.name != "coin toss"]
    assert [t.name for t in curves] == ["meso4.df (AUC 1.000)", "mesoinception4.df (AUC 0.778)"]
    assert list(curves[1].x) == result["models"][1]["roc"]["fpr"]
    json.dumps(fig.to_plotly_json(), default=str)


def test_calibration_bins_match_sklearn_and_count_clips():
    labels = np.array([0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.15, 0.5, 0.9, 0.95])
    mean_pred, frac_fake, counts = calibration_bins(labels, scores, n_bins=4)
    assert list(counts) == [2, 1, 2]  # bins [0, .25), [.25, .5], (.75, 1]: the empty one is dropped
    assert list(frac_fake) == [0.0, 1.0, 1.0]
    assert mean_pred[0] == pytest.approx(0.125)


def test_calibration_figure_skips_a_model_without_both_classes(result):
    fig = calibration_figure(result)
    assert [t.name for t in fig.data] == ["perfectly calibrated", *MODELS]


def test_scatter_colours_by_truth_and_a_point_leads_back_to_its_clip(result):
    fig = scatter_figure(result, *MODELS)
    real, fake = fig.data
    assert real.name == "really REAL" and len(real.x) == 3 and len(fake.x) == 3
    point = {"curve_number": 1, "point_index": 0, "customdata": [fake.customdata[0][0]]}
    assert clip_at_point(point) == "fake/f1.mp4"
    assert (fake.x[0], fake.y[0]) == (0.6, 0.3)
    assert clip_at_point({"x": 1}) is None
