"""The layers import one way: each module imports only from its own layer or the ones below it.

Lowest first (docs/ARCHITECTURE.md draws the same stack):

    basics      core/__init__, errors, settings, types, hashing, files, schema_check
    registry    models/
    engine      core/engine/        (video, faces, tracking, verdicts, analysis, reports, heatmaps)
    data        core/data/          (labelled folders, face-crop datasets)
    training    core/training/
    evaluation  core/evaluation/    (metrics, evaluate, cross-validation, calibration fits)
    jobs        core/jobs/          (local and Ray runners, run state)
    scanning    core/scan/          (many clips, local pool or Ray)
    interfaces  core/commands/, core/__main__, views/, app.py

Every import counts, including the ones inside functions (kept there to defer TensorFlow), so a
cycle cannot hide behind a late import. The command line and the pages are side by side at the top
and never import each other; core/ and models/ never import streamlit.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [
    (
        "basics",
        ("core", "core.errors", "core.settings", "core.types", "core.hashing", "core.files", "core.schema_check"),
    ),
    ("registry", ("models",)),
    ("engine", ("core.engine",)),
    ("data", ("core.data",)),
    ("training", ("core.training",)),
    ("evaluation", ("core.evaluation",)),
    ("jobs", ("core.jobs",)),
    ("scanning", ("core.scan",)),
    ("interfaces", ("core.commands", "core.__main__", "views", "app")),
]
FIRST_PARTY = ("core", "models", "views", "app")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> tuple[int, str]:
    """(rank, prefix) of the most specific layer prefix that ``module`` falls under."""
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > len(best[1]):
                    best = (rank, prefix)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/ARCHITECTURE.md")
    return best


def _side(prefix: str) -> str:
    """Which of the two interfaces a top-layer prefix belongs to: the command line or the web app."""
    return "command line" if prefix.startswith("core") else "web app"


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # "from core import files" imports the module core.files
            found += [
                (node.lineno, f"{node.module}.{alias.name}")
                for alias in node.names
                if (ROOT / node.module.replace(".", "/") / f"{alias.name}.py").exists()
                or (ROOT / node.module.replace(".", "/") / alias.name / "__init__.py").exists()
            ]
    return [
        (line, name)
        for line, name in found
        if name.split(".")[0] in FIRST_PARTY or name == "streamlit" or name.startswith("streamlit.")
    ]


def _project_files() -> list[Path]:
    files = [ROOT / "app.py"]
    for folder in ("core", "models", "views"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def test_every_module_is_in_a_layer():
    for path in _project_files():
        _layer(_module_name(path))


@pytest.mark.parametrize("path", _project_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    module = _module_name(path)
    rank, prefix = _layer(module)
    wrong = []
    for line, name in _imports(path):
        if name.startswith("streamlit"):
            if not (module.startswith("views") or module == "app"):
                wrong.append(f"line {line}: {name} (only views/ and app.py use Streamlit)")
            continue
        if name == "app":
            wrong.append(f"line {line}: app")
            continue
        other_rank, other_prefix = _layer(name)
        if other_rank > rank:
            wrong.append(f"line {line}: {name} ({LAYERS[other_rank][0]}) from {LAYERS[rank][0]}")
        elif other_rank == rank == len(LAYERS) - 1 and _side(other_prefix) != _side(prefix):
            wrong.append(f"line {line}: {name}: the command line and the pages do not import each other")
    assert not wrong, f"{module} imports upward:\n" + "\n".join(wrong)


def test_figures_are_plain_plotly():
    """views/figures/ builds plotly figures only: no Streamlit, so the command line could use them."""
    for path in sorted((ROOT / "views" / "figures").glob("*.py")):
        assert not [n for _, n in _imports(path) if n.startswith("streamlit")], path
