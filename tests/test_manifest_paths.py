"""Manifest rows cannot escape their dataset folder.

Training reads every crop a ``manifest.csv`` names; a row naming ``../../etc/passwd``, an absolute
path, or a link that leads out of the folder would make the server read (and train on, and show
the name of) a file it was never given. read_manifest refuses such a dataset with one line.
"""

from __future__ import annotations

import csv

import pytest

from core.data.datasets import MANIFEST_FIELDS, DatasetError, read_manifest
from tests.test_train import make_dataset


def _add_row(dataset, **changes) -> None:
    with (dataset / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows.append({**rows[0], **changes})
    with (dataset / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path / "deep" / "crops", {"train": (2, 2)})


def test_a_good_manifest_reads_as_before(dataset):
    rows = read_manifest(dataset)
    assert len(rows) == 4 and all(r["file"].is_file() for r in rows)
    assert all(r["file"] == dataset / r["path"] for r in rows)


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "train/../../outside.png"])
def test_a_row_outside_the_folder_is_refused(dataset, path):
    _add_row(dataset, path=path)
    with pytest.raises(DatasetError, match="outside") as caught:
        read_manifest(dataset)
    assert "\n" not in caught.value.message and path in caught.value.message


def test_a_crop_that_links_out_of_the_folder_is_refused(dataset, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    (dataset / "train" / "real" / "link.png").symlink_to(secret)
    _add_row(dataset, path="train/real/link.png")
    with pytest.raises(DatasetError, match="outside"):
        read_manifest(dataset)


def test_a_folder_that_links_out_of_the_dataset_is_refused(dataset, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (dataset / "train" / "away").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    _add_row(dataset, path="train/away/f.png")
    with pytest.raises(DatasetError, match="outside"):
        read_manifest(dataset)


def test_a_dataset_reached_through_a_link_still_reads(dataset, tmp_path):
    """Only where the crops lead counts, not how the dataset folder itself was reached."""
    (tmp_path / "shortcut").symlink_to(dataset, target_is_directory=True)
    assert len(read_manifest(tmp_path / "shortcut")) == 4


def test_a_malformed_row_is_one_plain_line(dataset):
    _add_row(dataset, label="fake")
    with pytest.raises(DatasetError, match="manifest.csv line 6") as caught:
        read_manifest(dataset)
    assert "\n" not in caught.value.message
