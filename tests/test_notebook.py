"""notebooks/analysis.ipynb runs top to bottom on a sweep directory, as a researcher would run it."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from plot_sweeps import shared_sweep

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "analysis.ipynb"


def test_analysis_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = shutil.copytree(shared_sweep(), tmp_path / "sweep")
    shutil.rmtree(root / "fits")  # the notebook fits by itself; it must not need `florenz-scaling fit`
    monkeypatch.setenv("FLORENZ_SWEEP_DIR", str(root))  # inherited by the kernel
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 6  # every figure rendered
    text = "".join(o.get("text", "") for o in outputs)
    assert f"{root}: 16 runs (15 finished)" in text
    assert "Pareto frontier" in text
    assert not (root / "fits").exists() and not (root / "plots").exists()  # analysis only reads the sweep


def test_notebook_is_stored_without_outputs() -> None:
    """Outputs belong to a run, not to the repository (they would embed one machine's sweep)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
