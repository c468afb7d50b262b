"""``python -m core jobs``: list, submit, cancel, use, devices; bad input is one ``error:`` line."""

from __future__ import annotations

import json

import models
from core.__main__ import main
from core.settings import get_settings
from tests.test_jobs_data import fake_succeeded_run, settings  # noqa: F401 (fixture)
from tests.test_train import make_dataset


def test_list_use_and_bad_input(settings, capsys, tmp_path):  # noqa: F811
    assert main(["jobs"]) == 0
    assert capsys.readouterr().out.strip() == "no training runs yet"
    run_dir = fake_succeeded_run(settings, tag="cli")
    assert main(["jobs", "list"]) == 0
    assert f"{run_dir.name}  succeeded  local" in capsys.readouterr().out
    assert main(["jobs", "use", run_dir.name]) == 0
    assert "installed meso4.cli" in capsys.readouterr().out
    assert "meso4.cli" in {c.id for c in models.list_models(get_settings())}

    for argv, message in (
        (["jobs", "cancel", "nope"], "there is no training run 'nope'"),
        (["jobs", "use", "../x"], "there is no training run"),
        (["jobs", "submit", "--spec", str(tmp_path / "none.json")], "cannot read training spec"),
        (["jobs", "devices", "--ray", "ray://h:1"], "Ray Client address"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_submit_refuses_one_class_data_and_devices_lists_this_computer(settings, capsys, tmp_path):  # noqa: F811
    data = make_dataset(settings.data_root / "real_only", {"train": (3, 0)})
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"arch": "meso4", "tag": "x", "data": str(data)}))
    assert main(["jobs", "submit", "--spec", str(spec)]) == 2
    assert "only real faces" in capsys.readouterr().err
    assert main(["jobs", "devices"]) == 0
    assert capsys.readouterr().out.startswith("this computer: ")
