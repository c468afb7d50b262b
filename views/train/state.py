"""The Train page's state: widget keys of the form and the runs panel, device and folder probes,
and the one-time outcome of the last action."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.settings import get_settings
from views.common.upload import UPLOAD_TYPES, ClipSource, clip_file, safe_upload_name  # noqa: F401

# Widget keys of the training form and the runs panel (tests address widgets by these).
TRAIN_ARCH_KEY = "train_arch"
TRAIN_INIT_KEY = "train_init"
TRAIN_TAG_KEY = "train_tag"
TRAIN_DATA_KEY = "train_data"  # a folder found under the data root
TRAIN_DATA_PATH_KEY = "train_data_path"  # or one typed in (wins when filled)
TRAIN_EPOCHS_KEY = "train_epochs"
TRAIN_BATCH_KEY = "train_batch"
TRAIN_LR_KEY = "train_lr"
TRAIN_AUGMENT_KEY = "train_augment"
TRAIN_RUNTIME_KEY = "train_runtime"
TRAIN_PARALLEL_KEY = "train_parallel"
TRAIN_RAY_PIP_KEY = "train_ray_pip"
TRAIN_GPUS_KEY = "train_gpus"
TRAIN_EXTRACT_KEY = "train_extract"
TRAIN_START_KEY = "train_start"
TRAIN_RUN_KEY = "train_run"
TRAIN_CANCEL_KEY = "train_cancel"
TRAIN_USE_KEY = "train_use"
TRAIN_REPLACE_KEY = "train_replace"
TRAIN_FLASH_KEY = "dfi_train_flash"  # (kind, message): the outcome of the last action, shown once


@st.cache_data(ttl=60, show_spinner=False)
def runtime_devices(backend: str, address: str):
    """The devices of the chosen runtime (core.jobs.devices.Devices), probed at most once a minute.

    Raises:
        DFIError: the Ray cluster does not answer (not cached, so a retry asks again).
    """
    from core.jobs.devices import local_devices
    from core.jobs.ray_cluster import ray_devices

    return local_devices() if backend == "local" else ray_devices(address)


@st.cache_data(ttl=30, show_spinner=False)
def data_folder_choices(data_root: str, cache_dir: str) -> list[str]:
    """Folders a job could train on (see core.jobs.data_folders.candidate_folders), rescanned every 30 s."""
    from core.jobs.data_folders import candidate_folders

    settings = get_settings(data_root=Path(data_root), cache_dir=Path(cache_dir))
    return [str(p) for p in candidate_folders(settings)]


def flash(kind: str, message: str) -> None:
    """Keep an action's outcome ("success", "error", "info") to show on the next run of the page."""
    st.session_state[TRAIN_FLASH_KEY] = (kind, message)


def pop_flash() -> tuple[str, str] | None:
    """The outcome kept by :func:`flash`, once."""
    return st.session_state.pop(TRAIN_FLASH_KEY, None)
