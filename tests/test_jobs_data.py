"""What a training job may read and what it is told about it (core.jobs.data_folders), the checks before a
run is submitted (core.jobs.service.check_spec), and "Use this model" (core.training.install_run)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import models
from core.errors import DFIError
from core.jobs import service as jobs
from core.jobs.data_folders import (
    DataFolderError,
    candidate_folders,
    extraction_target,
    resolve_data_folder,
    summarize_folder,
)
from core.settings import get_settings
from core.training.install_run import PublishError, use_run
from core.training.run_folder import new_run_dir
from models.cards import ModelCard, WeightsSpec, write_card
from models.weights import sha256_of
from tests.test_train import make_dataset


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DFI_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.delenv("DFI_WEIGHTS_DIR", raising=False)
    (tmp_path / "data").mkdir()
    return get_settings()


def test_folders_outside_the_data_root_are_refused_even_through_a_link(settings, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (settings.data_root / "sneaky").symlink_to(outside)
    for raw in (str(outside), "sneaky", "../elsewhere", str(settings.data_root / ".." / "elsewhere")):
        with pytest.raises(DataFolderError, match="outside the data folder"):
            resolve_data_folder(raw, settings)
    with pytest.raises(DataFolderError, match="there is no folder"):
        resolve_data_folder("missing", settings)
    inside = settings.data_root / "set"
    inside.mkdir()
    assert resolve_data_folder("set", settings) == inside.resolve()
    extracted = extraction_target(inside, settings)
    extracted.mkdir(parents=True)
    assert resolve_data_folder(str(extracted), settings) == extracted.resolve()  # the app's own crops


def test_summary_of_a_crop_dataset_counts_per_split_and_label(settings):
    data = make_dataset(settings.data_root / "crops", {"train": (3, 2), "val": (1, 1)})
    summary = summarize_folder(data)
    assert summary.kind == "crops" and summary.ready
    assert summary.crops == {"train": {"real": 3, "fake": 2}, "val": {"real": 1, "fake": 1}}
    assert candidate_folders(settings) == [data]


def test_summary_flags_one_class_and_no_faces(settings):
    one = make_dataset(settings.data_root / "one", {"train": (3, 0)})
    assert not summarize_folder(one).ready
    assert "only real faces" in summarize_folder(one).problems[0]
    val_only_real = make_dataset(settings.data_root / "split", {"train": (0, 3), "val": (2, 0)})
    assert "the training part holds only fake faces" in summarize_folder(val_only_real).problems[0]
    empty = settings.data_root / "empty"
    empty.mkdir()
    (empty / "manifest.csv").write_text("path,source,kind,label,split,group,frame_index,time_s,track_id,confidence\n")
    (empty / "sources.csv").write_text(
        "source,kind,label,split,group,status,frames,frames_with_face,crops,message\n"
        "real/a.mp4,clip,0,train,a,no_face,32,0,0,\n"
    )
    summary = summarize_folder(empty)
    assert summary.faces_pct == 0.0 and "no faces were found" in summary.problems[0]


def test_summary_of_raw_clips_asks_for_extraction_and_spots_one_class(settings):
    raw = settings.data_root / "raw"
    (raw / "real").mkdir(parents=True)
    (raw / "real" / "a.mp4").write_bytes(b"x")
    (raw / "fake").mkdir()
    assert "only real faces" in summarize_folder(raw).problems[0]
    (raw / "fake" / "b.png").write_bytes(b"x")
    summary = summarize_folder(raw)
    assert summary.kind == "raw" and not summary.problems and summary.clips == {"all": {"real": 1, "fake": 1}}
    assert not summary.ready
    nothing = settings.data_root / "nothing"
    nothing.mkdir()
    assert "neither real/ and fake/" in summarize_folder(nothing).problems[0]


def test_submit_refuses_bad_data_and_taken_names_before_making_a_run(settings):
    raw = settings.data_root / "raw"
    (raw / "real").mkdir(parents=True)
    (raw / "fake").mkdir()
    (raw / "real" / "a.mp4").write_bytes(b"x")
    (raw / "fake" / "b.mp4").write_bytes(b"x")
    one = make_dataset(settings.data_root / "one", {"train": (3, 0)})
    good = make_dataset(settings.data_root / "good", {"train": (2, 2)})
    cases = [
        ({"data": "/etc"}, "outside the data folder"),
        ({"data": str(raw)}, "extract the faces first"),
        ({"data": str(one)}, "only real faces"),
        ({"data": str(good), "tag": "df"}, "meso4.df already exists"),
        ({"data": str(good), "tag": "Bad Name"}, "may hold only"),
        ({"data": str(good), "epochs": 0}, "epochs"),
    ]
    for change, message in cases:
        with pytest.raises(DFIError, match=message):
            jobs.submit({"arch": "meso4", "tag": "fine", **change}, "local", settings)
    assert not settings.runs_root.exists() or not any(settings.runs_root.iterdir())


def fake_succeeded_run(settings, tag: str = "mine", payload: bytes = b"weights") -> Path:
    """A run folder as a succeeded run leaves it: status, and card + weights in card/."""
    run_dir = new_run_dir(settings.runs_root, "meso4", tag)
    (run_dir / "spec.json").write_text(json.dumps({"arch": "meso4", "tag": tag, "data": "d"}))
    (run_dir / "job.json").write_text(json.dumps({"backend": "local"}))
    (run_dir / "status.json").write_text(json.dumps({"state": "succeeded"}))
    weights = run_dir / "card" / f"meso4.{tag}.weights.h5"
    weights.parent.mkdir()
    weights.write_bytes(payload)
    base = models.get_card("meso4.df", settings)
    card = ModelCard(
        **{
            **base.__dict__,
            "id": f"meso4.{tag}",
            "output": "p_fake",
            "source": None,
            "weights": WeightsSpec(weights.name, sha256_of(weights), None, "test"),
        }
    )
    write_card(card, weights.parent, {n: a.family for n, a in models.ARCHITECTURES.items()})
    return run_dir


def test_use_this_model_installs_card_and_weights_into_the_registry(settings):
    run_dir = fake_succeeded_run(settings)
    assert "meso4.mine" not in {c.id for c in models.list_models(settings)}
    card = use_run(run_dir, settings)
    assert card.id == "meso4.mine" and card.source.parent == settings.user_cards_dir
    assert models.weights_status(card, settings).ok
    assert use_run(run_dir, settings).id == "meso4.mine"  # again: nothing changes
    other = fake_succeeded_run(settings, payload=b"other weights")
    with pytest.raises(PublishError, match="already installed"):
        use_run(other, settings)
    assert use_run(other, settings, replace=True).weights.sha256 == sha256_of(other / "card" / "meso4.mine.weights.h5")


def test_nothing_is_installed_from_a_damaged_or_unfinished_run(settings):
    damaged = fake_succeeded_run(settings, tag="damaged")
    (damaged / "card" / "meso4.damaged.weights.h5").write_bytes(b"changed")
    with pytest.raises(PublishError, match="missing or damaged"):
        use_run(damaged, settings)
    failed = fake_succeeded_run(settings, tag="failed")
    (failed / "status.json").write_text(json.dumps({"state": "failed"}))
    with pytest.raises(PublishError, match="has not finished successfully"):
        use_run(failed, settings)
    ids = {c.id for c in models.list_models(settings)}
    assert not {"meso4.damaged", "meso4.failed"} & ids
    assert not (settings.cache_dir / "weights" / "meso4.damaged.weights.h5").exists()


def test_a_same_named_file_searched_first_blocks_the_install(settings, tmp_path, monkeypatch):
    first = tmp_path / "first"
    first.mkdir()
    (first / "meso4.shadow.weights.h5").write_bytes(b"old")
    monkeypatch.setenv("DFI_WEIGHTS_DIR", str(first))
    run_dir = fake_succeeded_run(get_settings(), tag="shadow")
    with pytest.raises(PublishError, match="would be loaded instead"):
        use_run(run_dir, get_settings())
    assert "meso4.shadow" not in {c.id for c in models.list_models(get_settings())}


def test_a_face_extraction_that_stops_early_says_why(settings):
    from core.jobs.extraction import extraction_progress, start_extraction

    raw = settings.data_root / "raw"
    for label in ("real", "fake"):
        (raw / label).mkdir(parents=True)
        (raw / label / f"{label}.png").write_bytes(b"not really a png")
    out = extraction_target(raw, settings)
    out.mkdir(parents=True)
    (out / "dataset.json").write_text(json.dumps({"frames": 1}))  # made with other options
    assert start_extraction(raw, settings) == out
    deadline = time.monotonic() + 60
    while extraction_progress(out).running:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    progress = extraction_progress(out)
    assert progress.total == 2 and not progress.finished
    assert "was made with other options" in progress.error
