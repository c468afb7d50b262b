"""The RESULTS folder of a scan: what is done, readable while the scan runs and after a crash.

Layout::

    RESULTS/scan.json                 the request and the state (running, finished, stopped, failed)
    RESULTS/reports/<sha256>.json     one dfi.report/1 per analysed clip
    RESULTS/results.jsonl             one row per clip, appended (and fsynced) the moment it is done
    RESULTS/results.csv, .parquet     the same rows as a table, rewritten from results.jsonl

The journal (``results.jsonl``) is the truth: each row is one line written with a single
``write`` and an ``fsync`` under a lock, so a crash loses at most the clip being written and a
half line is ignored on reading. The report of a clip is written (atomically) before its row, so
a row never points at a missing report. The tables are rebuilt from the journal at most every
few seconds and at the end (rewriting them per clip would cost O(clips²) on a big scan); a
resumed scan rebuilds them first. Resuming means: a clip whose sha256 has a row is done.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from core.files import locked, read_json, update_json, write_bytes_atomic, write_text_atomic
from core.scan.worker import FINAL_STATUSES

SCAN_SCHEMA = "dfi.scan/1"
STATE_FILE = "scan.json"
JOURNAL = "results.jsonl"
CSV_FILE = "results.csv"
PARQUET_FILE = "results.parquet"
REPORTS = "reports"
BASE_COLUMNS = ("path", "sha256", "status")
TAIL_COLUMNS = ("seconds", "error", "same_as")
TABLE_EVERY_S = 5.0


def p_fake_column(model_id: str) -> str:
    """The table column of a model's clip score."""
    return f"{model_id} p_fake"


def verdict_column(model_id: str) -> str:
    """The table column of a model's verdict."""
    return f"{model_id} verdict"


def row_for(name: str, sha256: str | None, outcome: dict, model_ids: Sequence[str], same_as: str | None = None) -> dict:
    """The table row of one clip from its outcome (core.scan.worker)."""
    models = {m["id"]: m for m in (outcome.get("report") or {}).get("models", [])}
    row = {"path": name, "sha256": sha256 or "", "status": outcome["status"]}
    for model_id in model_ids:
        result = models.get(model_id, {})
        row[p_fake_column(model_id)] = result.get("p_fake")
        row[verdict_column(model_id)] = result.get("verdict")
    row.update(seconds=outcome.get("seconds"), error=outcome.get("error"), same_as=same_as)
    return row


class ResultsFolder:
    """Reads and writes one RESULTS folder (see the module docstring)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def state_file(self) -> Path:
        return self.root / STATE_FILE

    @property
    def journal(self) -> Path:
        return self.root / JOURNAL

    def report_path(self, sha256: str) -> Path:
        return self.root / REPORTS / f"{sha256}.json"

    def state(self) -> dict:
        """scan.json ({} before the first scan)."""
        return read_json(self.state_file)

    def update_state(self, **fields) -> dict:
        return update_json(self.state_file, **fields)

    def rows(self) -> list[dict]:
        """Every complete row of the journal, in the order written (a torn last line is skipped)."""
        try:
            lines = self.journal.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        rows = []
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue  # the line a crash cut short; its clip is scanned again on resume
            if isinstance(row, dict) and row.get("status") in FINAL_STATUSES:
                rows.append(row)
        return rows

    def done(self) -> dict[str, dict]:
        """The first row of each sha256 already scanned (what a resumed scan skips)."""
        done: dict[str, dict] = {}
        for row in self.rows():
            if row.get("sha256"):
                done.setdefault(row["sha256"], row)
        return done

    def report(self, sha256: str) -> dict | None:
        """A clip's dfi.report/1 dict, or None (an error row, or not scanned)."""
        data = read_json(self.report_path(sha256)) if sha256 else {}
        return data or None

    def record(self, row: dict, report: dict | None) -> None:
        """Write a finished clip: its report (atomically), then its row (one fsynced line)."""
        if report is not None and row.get("sha256"):
            text = json.dumps(report, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
            write_bytes_atomic(self.report_path(row["sha256"]), text.encode("utf-8"))
        line = (json.dumps(row, allow_nan=False, ensure_ascii=False) + "\n").encode("utf-8")
        self.root.mkdir(parents=True, exist_ok=True)
        with locked(self.journal):
            fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def write_tables(self, model_ids: Sequence[str]) -> None:
        """Rewrite results.csv and results.parquet from the journal (each atomically)."""
        import pandas as pd

        columns = [
            *BASE_COLUMNS,
            *(c for m in model_ids for c in (p_fake_column(m), verdict_column(m))),
            *TAIL_COLUMNS,
        ]
        frame = pd.DataFrame(self.rows(), columns=columns)
        for model_id in model_ids:
            frame[p_fake_column(model_id)] = pd.to_numeric(frame[p_fake_column(model_id)]).astype("float64")
        frame["seconds"] = pd.to_numeric(frame["seconds"]).astype("float64")
        write_text_atomic(self.root / CSV_FILE, frame.to_csv(index=False))
        write_bytes_atomic(self.root / PARQUET_FILE, frame.to_parquet(index=False, engine="pyarrow"))


class TableWriter:
    """Rebuilds the tables at most every ``every_s`` seconds, and always on :meth:`flush`."""

    def __init__(self, folder: ResultsFolder, model_ids: Sequence[str], every_s: float = TABLE_EVERY_S):
        self.folder, self.model_ids, self.every_s = folder, tuple(model_ids), every_s
        self._last = 0.0

    def maybe(self) -> None:
        if time.monotonic() - self._last >= self.every_s:
            self.flush()

    def flush(self) -> None:
        self.folder.write_tables(self.model_ids)
        self._last = time.monotonic()


def counts(rows: Sequence[dict]) -> dict[str, int]:
    """How many rows ended how: ok, no_face, error."""
    return {status: sum(r["status"] == status for r in rows) for status in FINAL_STATUSES}
