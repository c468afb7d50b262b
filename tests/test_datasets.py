"""Face-crop datasets: source groups, splits, extraction (core.data.datasets, core.data.groups)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.__main__ import main
from core.data.datasets import DatasetError, read_manifest, scan_sources
from core.data.extract import extract_faces
from core.data.groups import assign_folds, assign_splits, source_group
from tests import clipgen

FRAMES = 4


@pytest.mark.parametrize(
    "stem, group",
    [
        ("519", "ff:519"),
        ("519_515", "ff:519"),  # fake T_S belongs to its target T
        ("ffpp_youtube_c23_519", "ff:519"),
        ("ffpp_Deepfakes_c23_519_515", "ff:519"),
        ("ffpp_NeuralTextures_c40_878_866", "ff:878"),
        ("ffpp_actors_c40_13__talking_against_wall", "dfd:13"),
        ("01_02__kitchen_pan__ABCDEFGH", "dfd:01"),
        ("dfdc_lynaeydofd", "dfdc:lynaeydofd"),
        ("dfdc_facecrop_aejvkfbtxs_0_1", "dfdc:aejvkfbtxs"),
        ("aejvkfbtxs_0_0", "dfdc:aejvkfbtxs"),
        ("abarnvbtwb-003-00", "dfdc:abarnvbtwb"),
        # Names that only end in digits are not FaceForensics++ ids: each stays its own group.
        ("sadtalker_RD_Radio34_000", "sadtalker_rd_radio34_000"),
        ("edtalk_demo_EDTalk_A_512", "edtalk_demo_edtalk_a_512"),
        ("my holiday clip", "my holiday clip"),
    ],
)
def test_source_group_names(stem, group):
    assert source_group(stem) == group


def test_ffpp_fakes_land_in_the_split_of_their_original():
    names = [f"ffpp_youtube_c40_{i}" for i in range(100, 140)]
    names += [f"ffpp_{m}_c40_{i}_{i + 300}" for m in ("Deepfakes", "FaceSwap") for i in range(100, 140)]
    labels = [0] * 40 + [1] * 80
    groups = [source_group(n) for n in names]
    splits = assign_splits(groups, labels, seed=3)
    by_name = {n: splits[g] for n, g in zip(names, groups)}
    for i in range(100, 140):
        assert by_name[f"ffpp_Deepfakes_c40_{i}_{i + 300}"] == by_name[f"ffpp_youtube_c40_{i}"]
        assert by_name[f"ffpp_FaceSwap_c40_{i}_{i + 300}"] == by_name[f"ffpp_youtube_c40_{i}"]


def test_assign_splits_is_deterministic_and_follows_fractions():
    rng = random.Random(0)
    groups = [f"g{rng.randrange(60)}" for _ in range(300)]
    labels = [rng.randrange(2) for _ in groups]
    a = assign_splits(groups, labels, seed=1)
    assert a == assign_splits(groups, labels, seed=1)
    assert a != assign_splits(groups, labels, seed=2)
    assert set(a) == set(groups) and set(a.values()) == {"train", "val", "test"}
    share = {s: sum(a[g] == s for g in groups) / len(groups) for s in ("train", "val", "test")}
    assert share["train"] == pytest.approx(0.7, abs=0.08)
    assert share["val"] == pytest.approx(0.15, abs=0.06) and share["test"] == pytest.approx(0.15, abs=0.06)


def test_assign_splits_small_set_and_zero_fraction():
    groups, labels = ["a", "b", "c", "d"], [0, 0, 1, 1]
    splits = assign_splits(groups, labels, fractions=(0.5, 0.5, 0.0))
    assert "test" not in splits.values()
    # Stratified: each label's groups are spread over train and val.
    assert {splits["a"], splits["b"]} == {"train", "val"} == {splits["c"], splits["d"]}
    with pytest.raises(ValueError, match="sum"):
        assign_splits(groups, labels, fractions=(0.5, 0.5, 0.5))


def test_assign_folds_keeps_groups_whole():
    groups = [f"g{i // 3}" for i in range(30)]  # 10 groups of 3 clips
    labels = [(i // 3) % 2 for i in range(30)]
    folds = assign_folds(groups, labels, folds=5, seed=0)
    assert set(folds) == set(groups) and set(folds.values()) == set(range(5))
    with pytest.raises(ValueError, match="folds"):
        assign_folds(groups, labels, folds=11)


def test_scan_sources_labels_groups_and_nested_image_folders(tmp_path):
    for rel in ("real/519.mp4", "fake/519_515.avi", "fake/frames_of_x/0001.png", "real/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    found = {s.source: s for s in scan_sources(tmp_path)}
    assert set(found) == {"real/519.mp4", "fake/519_515.avi", "fake/frames_of_x/0001.png"}
    assert found["real/519.mp4"].label == 0 and found["fake/519_515.avi"].label == 1
    assert found["real/519.mp4"].group == found["fake/519_515.avi"].group == "ff:519"
    assert found["fake/frames_of_x/0001.png"].group == "frames_of_x"
    assert found["fake/frames_of_x/0001.png"].kind == "image"


def test_scan_sources_refuses_a_folder_without_labels(tmp_path):
    with pytest.raises(DatasetError, match="real/"):
        scan_sources(tmp_path)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    """real/ and fake/ with synthetic MJPG clips (no ffmpeg needed), a no-face clip and a broken file."""
    root = tmp_path_factory.mktemp("labelled")
    (root / "real").mkdir()
    (root / "fake").mkdir()
    faces = clipgen.face_frames(n=12)
    clipgen.write_mjpg_avi(faces, root / "real" / "100.avi")
    clipgen.write_mjpg_avi([f[:, ::-1].copy() for f in faces], root / "fake" / "100_200.avi")
    clipgen.write_mjpg_avi(clipgen.no_face_frames(n=12), root / "fake" / "cup.avi")
    (root / "fake" / "broken.mp4").write_bytes(b"not a video at all")
    return root


@pytest.fixture(scope="module")
def extracted(labelled, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("dataset")
    summary = extract_faces(labelled, out, frames=FRAMES, show_progress=False, log=lambda _: None)
    return out, summary


def test_extract_faces_writes_crops_and_manifest(extracted):
    out, summary = extracted
    rows = read_manifest(out)
    assert {r["source"] for r in rows} == {"real/100.avi", "fake/100_200.avi"}
    assert len(rows) == 2 * FRAMES
    for row in rows:
        assert row["file"].is_file()
        assert Path(row["path"]).parts[:2] == (row["split"], "real" if row["label"] == 0 else "fake")
        image = cv2.imread(str(row["file"]))
        assert image.shape[0] == image.shape[1] <= 320
    # The pair 100 / 100_200 shares a group, hence a split.
    assert len({(r["group"], r["split"]) for r in rows}) == 1
    assert summary["no_face"] == ["fake/cup.avi"]
    assert [f["source"] for f in summary["failed"]] == ["fake/broken.mp4"]
    assert summary["failed"][0]["message"].strip()  # the reason, in words
    assert summary["frames_with_face_pct"] == pytest.approx(100 * 2 * FRAMES / (3 * FRAMES), abs=0.1)


def test_extracted_crops_are_the_analyzers_crops(extracted, labelled):
    """Training must see exactly what inference sees: same frames, same boxes, same pixels."""
    from core.engine import faces, video

    out, _ = extracted
    _, frames = video.read_clip(labelled / "real" / "100.avi", FRAMES)
    found = faces.find_faces(frames)
    rows = {r["frame_index"]: r for r in read_manifest(out) if r["source"] == "real/100.avi"}
    for crop in found.crops:
        saved = cv2.cvtColor(cv2.imread(str(rows[crop.face.frame_index]["file"])), cv2.COLOR_BGR2RGB)
        expected = crop.image
        if max(expected.shape[:2]) > 320:
            expected = cv2.resize(expected, (320, 320), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(saved, expected)


def test_extract_faces_resumes_without_redoing_finished_sources(extracted, labelled):
    out, _ = extracted
    manifest = (out / "manifest.csv").read_text()
    with (out / "sources.csv").open() as handle:
        before = list(csv.DictReader(handle))
    seen = []
    summary = extract_faces(labelled, out, frames=FRAMES, show_progress=False, log=seen.append)
    assert (out / "manifest.csv").read_text() == manifest  # nothing redone or duplicated
    with (out / "sources.csv").open() as handle:
        after = list(csv.DictReader(handle))
    # Only the failed file was tried again.
    assert [r["source"] for r in after[len(before) :]] == ["fake/broken.mp4"]
    assert seen and "broken.mp4" in seen[0]
    assert (
        summary["crops"]
        == extract_faces(labelled, out, frames=FRAMES, show_progress=False, log=lambda _: None)["crops"]
    )


def test_extract_faces_refuses_other_options_on_resume(extracted, labelled):
    out, _ = extracted
    with pytest.raises(DatasetError, match="frames"):
        extract_faces(labelled, out, frames=FRAMES + 1, show_progress=False)


def test_extract_faces_command_line(labelled, tmp_path, capsys):
    code = main(
        ["extract-faces", str(labelled), str(tmp_path / "ds"), "--frames", "2", "--split", "1,0,0", "--no-progress"]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "train: 1 real / 2 fake sources" in captured.out
    assert "failed: fake/broken.mp4" in captured.out


def test_extract_faces_command_line_bad_source(tmp_path, capsys):
    assert main(["extract-faces", str(tmp_path / "nowhere"), str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


@pytest.mark.shared
def test_extract_faces_on_shared_crops(shared_data, tmp_path):
    summary = extract_faces(shared_data / "crops", tmp_path, seed=0, show_progress=False)
    rows = read_manifest(tmp_path)
    assert len(rows) == 22
    assert sum(r["label"] for r in rows) == 11
    assert summary["failed"] == [] and summary["no_face"] == []
    # No source group is split across splits.
    splits_of_group: dict[str, set[str]] = {}
    for row in rows:
        splits_of_group.setdefault(row["group"], set()).add(row["split"])
    assert all(len(s) == 1 for s in splits_of_group.values())
    assert len(splits_of_group) == 5  # one real DFDC video, four fake ones
