"""AppTest for the Train page (app.py → views/train/page.py), widgets addressed by key, with the job
runner faked: the fake "runs" a job at once by writing the files a real run writes (metrics, status,
card and weights), or the files of a run that ran out of memory, or of one still running.

Covered: the empty page; data outside the data root, one class only, a good dataset and its
summary; start → curves → "Use this model" → the new detector offered on the Analyze page; a
run that ran out of memory; cancelling; a configured Ray cluster that does not answer. No exception may
reach the page in any of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import models
from core.files import now_iso, update_json
from core.jobs import service as jobs
from core.settings import get_settings
from core.training.run_folder import OUTPUT_LOG, finish
from models.cards import ModelCard, WeightsSpec, write_card
from models.weights import sha256_of
from tests.ray_cluster import free_port
from tests.test_train import make_dataset
from views.analyze import state as analyze_state
from views.train import state as train_state

APP = Path(__file__).resolve().parent.parent / "app.py"
TIMEOUT = 240


class FakeRunner:
    """Stands in for the local runner; ``outcome`` decides what the submitted "job" leaves behind."""

    backend = "local"
    outcome = "succeeded"
    submitted: list[Path] = []

    def submit(self, run_dir: Path, argv: list[str], **options) -> None:
        FakeRunner.submitted.append(run_dir)
        spec = json.loads((run_dir / "spec.json").read_text())
        update_json(run_dir / "job.json", backend="local", argv=argv, created=now_iso(), launched=now_iso())
        status = {"state": "running", "started": now_iso(), "epoch": 1, "epochs": spec["epochs"], "eta_s": 30}
        update_json(run_dir / "status.json", **status)
        (run_dir / "train.log").write_text("2030-01-01T00:00:00+00:00 phase 1: epochs 1-2\n")
        if self.outcome == "running":
            return
        if self.outcome == "oom":
            (run_dir / OUTPUT_LOG).write_text("Epoch 1/2\nKilled\n")
            finish(run_dir, "failed", "ran out of memory: the system stopped the training (signal 9)")
            return
        rows = [
            {
                "epoch": e,
                "loss": 0.3 / e,
                "val_loss": 0.35 / e,
                "accuracy": 0.6 + e / 10,
                "auc": 0.7,
                "val_auc": 0.6 + e / 10,
                "val_accuracy": 0.7,
            }
            for e in (1, 2)
        ]
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        card_dir = Path(spec["cards_dir"])
        card_dir.mkdir()
        weights = card_dir / f"meso4.{spec['tag']}.weights.h5"
        weights.write_bytes(b"fake weights of " + spec["tag"].encode())
        base = models.get_card("meso4.df")
        card = ModelCard(
            **{
                **base.__dict__,
                "id": f"meso4.{spec['tag']}",
                "source": None,
                "output": "p_fake",
                "display_name": f"Meso4 ({spec['tag']})",
                "weights": WeightsSpec(weights.name, sha256_of(weights), None, "test"),
            }
        )
        write_card(card, card_dir, {n: a.family for n, a in models.ARCHITECTURES.items()})
        update_json(run_dir / "status.json", state="succeeded", epoch=2, eta_s=0, updated=now_iso())

    def refresh(self, run_dir: Path) -> None:
        pass

    def cancel(self, run_dir: Path, wait_s: float = 0.0) -> None:
        finish(run_dir, "cancelled", "cancelled on request")


@pytest.fixture(autouse=True)
def page_env(monkeypatch, tmp_path):
    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DFI_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.delenv("DFI_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("DFI_RAY_ADDRESS", raising=False)  # no cluster unless a test sets one
    monkeypatch.setattr(jobs, "runner_for", lambda backend, address=None: FakeRunner())
    FakeRunner.outcome, FakeRunner.submitted = "succeeded", []
    make_dataset(tmp_path / "data" / "good", {"train": (3, 3), "val": (1, 1)})
    make_dataset(tmp_path / "data" / "only_real", {"train": (3, 0)})
    yield tmp_path / "data"
    st.cache_data.clear()


def open_train_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    at.switch_page("views/train/page.py").run()
    assert not at.exception
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def choose_data(at: AppTest, folder: str, typed: bool = False) -> AppTest:
    """Pick ``folder`` from the list of folders found under the data root, or type its path."""
    if typed:
        at.text_input(key=train_state.TRAIN_DATA_PATH_KEY).set_value(folder).run()
    else:
        at.selectbox(key=train_state.TRAIN_DATA_KEY).set_value(folder).run()
    assert not at.exception
    return at


def test_empty_page_and_bad_data_folders(page_env, tmp_path):
    at = open_train_page()
    assert "No training runs yet" in texts(at.info)
    assert at.button(key=train_state.TRAIN_START_KEY).disabled
    assert at.selectbox(key=train_state.TRAIN_DATA_KEY).options == ["good", "only_real"]
    choose_data(at, str(tmp_path), typed=True)  # the data root's parent
    assert "is outside the data folder" in texts(at.error)
    choose_data(at, "", typed=True)
    choose_data(at, str(page_env / "only_real"))
    assert "holds only real faces" in texts(at.error)
    assert at.button(key=train_state.TRAIN_START_KEY).disabled


def test_start_watch_and_use_the_model(page_env):
    at = choose_data(open_train_page(), str(page_env / "good"))
    summary = at.dataframe[0].value
    assert list(summary["Real faces"]) == [3, 1] and list(summary["Fake faces"]) == [3, 1]
    at.text_input(key=train_state.TRAIN_TAG_KEY).set_value("apptest").run()
    at.number_input(key=train_state.TRAIN_EPOCHS_KEY).set_value(2).run()
    at.button(key=train_state.TRAIN_START_KEY).click().run()
    assert not at.exception
    assert "Started meso4.apptest" in texts(at.success)
    spec = json.loads((FakeRunner.submitted[0] / "spec.json").read_text())
    assert spec["epochs"] == 2 and spec["data"] == str((page_env / "good").resolve())
    assert spec["cards_dir"] == str(FakeRunner.submitted[0] / "card")  # the card stays in the run folder
    assert at.get("plotly_chart"), "the learning curves are missing"
    assert "Finished in" in texts(at.markdown)
    assert "meso4.apptest" not in {c.id for c in models.list_models(get_settings())}
    at.button(key=train_state.TRAIN_USE_KEY).click().run()
    assert not at.exception
    assert "now offer it" in texts(at.success)
    assert "meso4.apptest" in {c.id for c in models.list_models(get_settings())}
    at.switch_page("views/analyze/page.py").run()  # the Analyze page offers it
    assert not at.exception
    # (AppTest drops the sidebar after switch_page, so the detector list is checked, not the sidebar.)
    assert any("(meso4.apptest)" in option for option in at.multiselect(key=analyze_state.MODELS_KEY).options)
    at.switch_page("views/train/page.py").run()
    assert at.text_input(key=train_state.TRAIN_TAG_KEY).value != "apptest"  # a fresh name for the next run


def test_a_run_that_ran_out_of_memory_says_so(page_env):
    FakeRunner.outcome = "oom"
    at = choose_data(open_train_page(), str(page_env / "good"))
    at.button(key=train_state.TRAIN_START_KEY).click().run()
    assert not at.exception
    assert "ran out of memory" in texts(at.error)
    assert "Killed" in texts(at.code)  # the log is kept and shown
    assert not [b for b in at.button if b.key in (train_state.TRAIN_USE_KEY, train_state.TRAIN_CANCEL_KEY)]


def test_a_running_run_can_be_cancelled(page_env):
    FakeRunner.outcome = "running"
    at = choose_data(open_train_page(), str(page_env / "good"))
    at.button(key=train_state.TRAIN_START_KEY).click().run()
    assert not at.exception, at.exception
    assert "Training: epoch 1 of 10, about 30 s left." in texts(at.markdown)
    at.button(key=train_state.TRAIN_CANCEL_KEY).click().run()
    assert not at.exception
    assert "Cancelled: cancelled on request" in texts(at.warning)


def test_a_ray_address_that_does_not_answer(page_env, monkeypatch):
    monkeypatch.setenv("DFI_RAY_ADDRESS", f"http://127.0.0.1:{free_port()}")  # the server's own setting
    at = choose_data(open_train_page(), str(page_env / "good"))
    at.radio(key=train_state.TRAIN_RUNTIME_KEY).set_value("ray").run()
    assert not at.exception
    assert "does not answer" in texts(at.error)
    at.button(key=train_state.TRAIN_START_KEY).click().run()
    assert "The run was not started" in texts(at.error) and not FakeRunner.submitted


def test_xception_starts_from_the_installed_card_when_imagenet_is_not_on_this_computer(tmp_path, monkeypatch):
    from core.settings import get_settings
    from views.train.actions import init_choices

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no ImageNet file there
    monkeypatch.delenv("DFI_IMAGENET_WEIGHTS", raising=False)
    monkeypatch.delenv("DFI_PROJECT_WEIGHTS_DIR", raising=False)
    choices = list(init_choices("xception", get_settings()))
    assert choices == ["xception.dfi2", "random"]
    (tmp_path / "keras" / "models").mkdir(parents=True)
    (tmp_path / "keras" / "models" / "xception_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"x")
    assert list(init_choices("xception", get_settings()))[0] == "imagenet"
    assert list(init_choices("meso4", get_settings()))[0] == "random"
    # The setting, when given, is the one place looked at (as training does): the cache no longer counts.
    monkeypatch.setenv("DFI_IMAGENET_WEIGHTS", str(tmp_path / "elsewhere.h5"))
    assert "imagenet" not in init_choices("xception", get_settings())
    (tmp_path / "elsewhere.h5").write_bytes(b"x")
    assert list(init_choices("xception", get_settings()))[0] == "imagenet"


def test_the_page_offers_imagenet_for_xception_only_when_its_file_is_there(page_env, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("DFI_IMAGENET_WEIGHTS", str(tmp_path / "imagenet.h5"))
    at = open_train_page()
    at.selectbox(key=train_state.TRAIN_ARCH_KEY).set_value("xception").run()
    assert not at.exception
    assert not any("ImageNet" in o for o in at.selectbox(key=train_state.TRAIN_INIT_KEY).options)
    (tmp_path / "imagenet.h5").write_bytes(b"x")
    at.run()
    options = at.selectbox(key=train_state.TRAIN_INIT_KEY).options
    assert options[0].startswith("ImageNet") and not at.exception
