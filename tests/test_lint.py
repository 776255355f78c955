"""Code-quality checks run with the suite: ruff is clean and the NumPy core stays free of UI libraries."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UI_LIBS = {"streamlit", "plotly", "streamlit_drawable_canvas"}
# Modules allowed to import UI libraries: the entry point, the Streamlit pages and the Plotly figure builders
# (cnnviz/viz/figures*.py, which may import Plotly but never Streamlit).
UI_ALLOWED = {"app.py"}
FIGURE_MODULES = "cnnviz/viz/figures"


def test_ruff_clean():
    ruff = shutil.which("ruff")
    cmd = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    proc = subprocess.run([*cmd, "check", "."], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0 and "No module named ruff" in proc.stderr:
        pytest.skip("ruff is not installed")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_never_imports_ui_libraries():
    offenders = []
    for path in sorted((ROOT / "cnnviz").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in UI_ALLOWED or rel.startswith("cnnviz/ui/"):
            continue
        bad = _imported_roots(path) & UI_LIBS
        if rel.startswith(FIGURE_MODULES):
            bad -= {"plotly"}
        if bad:
            offenders.append(f"{rel}: {sorted(bad)}")
    assert not offenders, "core modules import UI libraries: " + "; ".join(offenders)
