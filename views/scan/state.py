"""The Scan page's state: widget keys, which scan this session watches, and the folders it may scan.

A scan itself lives in its RESULTS folder and its background process (core.scan.launch), not in
the session: a reload, a second tab or a restarted server finds it there again.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.scan import launch
from core.scan.sources import folder_inside
from core.settings import Settings

SCAN_FOLDER_KEY = "scan_folder"
SCAN_FOLDER_TEXT_KEY = "scan_folder_text"
SCAN_MODELS_KEY = "scan_models"
SCAN_FRAMES_KEY = "scan_frames"
SCAN_WHERE_KEY = "scan_where"
SCAN_START_KEY = "scan_start"
SCAN_STOP_KEY = "scan_stop"
SCAN_PICK_KEY = "scan_pick"  # which scan's results are shown
SCAN_TABLE_KEY = "scan_table"
SCAN_STATUS_FILTER_KEY = "scan_filter_status"
SCAN_VERDICT_FILTER_KEY = "scan_filter_verdict"
SCAN_TEXT_FILTER_KEY = "scan_filter_text"
WATCHED_KEY = "dfi_scan_watched"  # the RESULTS folder this session started or picked
SHOWN_KEY = "dfi_scan_shown"  # (RESULTS folder, [(path, sha256)] of the table's rows as shown)
PICKED_KEY = "dfi_scan_picked"  # (RESULTS folder, path, sha256) of the clip opened below the table
OTHER_FOLDER = "Another folder inside the data folder…"
MAX_DEPTH = 2


def folder_choices(settings: Settings) -> dict[str, Path]:
    """The data folder and its sub-folders (two levels; hidden ones left out), by the label shown."""
    root = settings.ensure_data_root()
    choices = {"the data folder itself": root}
    level = [root]
    for _ in range(MAX_DEPTH):
        level = [d for parent in level for d in sorted(parent.iterdir()) if d.is_dir() and not d.name.startswith(".")]
        choices.update({d.relative_to(root).as_posix(): d for d in level})
    return dict(sorted(choices.items(), key=lambda kv: (kv[1] != root, kv[0])))


def typed_folder(settings: Settings, text: str) -> Path:
    """A typed folder, resolved and checked to lie inside the data root (SourceError otherwise)."""
    return folder_inside(settings.data_root, text)


def watch(out: Path) -> None:
    st.session_state[WATCHED_KEY] = str(out)


def watched(settings: Settings) -> Path | None:
    """The scan this session follows: the one it started or picked, else the newest page scan."""
    held = st.session_state.get(WATCHED_KEY)
    if held and Path(held).is_dir() and Path(held).parent == launch.scans_root(settings):
        return Path(held)
    scans = launch.list_scans(settings)
    return scans[0] if scans else None


def show_rows(out: Path, rows: list[tuple[str, str]]) -> None:
    """Remember which clips the table shows, in order (the selection callback maps rows to them)."""
    st.session_state[SHOWN_KEY] = (str(out), rows)


def pick_from_table() -> None:
    """Table on_select callback: the selected row's clip becomes the one shown below the table."""
    selected = st.session_state[SCAN_TABLE_KEY]["selection"]["rows"]
    out, rows = st.session_state.get(SHOWN_KEY, (None, []))
    # The selection comes from the browser: only a row of the table as drawn may be opened.
    if selected and 0 <= selected[0] < len(rows):
        st.session_state[PICKED_KEY] = (out, *rows[selected[0]])


def picked(out: Path) -> tuple[str, str] | None:
    """(path, sha256) of the clip picked in ``out``'s table, or None."""
    held = st.session_state.get(PICKED_KEY)
    return (held[1], held[2]) if held is not None and held[0] == str(out) else None
