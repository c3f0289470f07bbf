"""Package data travels in the wheel: an installed (not editable) florenz-scaling finds the paper's Tables
2–3 and the F cache through importlib.resources, and its report shows the paper's coefficients."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from plot_sweeps import shared_sweep

REPO = Path(__file__).resolve().parents[1]
PAPER = json.loads((REPO / "fits" / "paper_coefficients.json").read_text())  # the source checkout's copy

PROBE = """
import json, florenz_scaling
from florenz_scaling.fit import load_paper
from florenz_scaling.spec.sizes import fwd_gmacs
paper = load_paper()
print(json.dumps({"file": florenz_scaling.__file__, "paper": paper, "F": fwd_gmacs("T-0.5M")}))
"""


def _run(cmd: list[str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the project's wheel installed (not editable); returns its bin/ directory."""
    root = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q",
          "-w", str(root / "dist")], root)  # fmt: skip
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root)
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(_run([str(venv / "bin" / "python"), "-c", where], root).strip())
    # The dependencies come from the project's environment, added as a plain path: its .pth files (the
    # editable install's finder among them) are not run, so florenz_scaling can only come from the wheel.
    (site / "project_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    wheel = next((root / "dist").glob("florenz_scaling-*.whl"))
    _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
          "--no-index", "-q", str(wheel)], root)  # fmt: skip
    return venv / "bin"


@pytest.mark.slow
def test_the_installed_package_finds_its_data(installed: Path, tmp_path: Path) -> None:
    got = json.loads(_run([str(installed / "python"), "-c", PROBE], tmp_path))
    assert not Path(got["file"]).resolve().is_relative_to(REPO), got["file"]  # the wheel's copy, not ours
    assert got["paper"] == PAPER and PAPER["laws"]["compute"]["groups"]["UC"]["params"]["alpha1"] == -0.15
    assert got["F"] > 0


@pytest.mark.slow
def test_the_installed_report_shows_the_papers_coefficients(installed: Path, tmp_path: Path) -> None:
    sweep = shutil.copytree(shared_sweep(), tmp_path / "sweep")  # fitted, as the pipeline leaves it
    assert not (sweep / "fits" / "paper_coefficients.json").exists()  # only the package has them
    _run([str(installed / "florenz-scaling"), "report", str(sweep)], tmp_path)
    html = (sweep / "report.html").read_text()
    # The answer's "paper α1 [95%]" cell of UC: empty when no copy of the paper's Table 2 is found.
    uc = PAPER["laws"]["compute"]["groups"]["UC"]
    (lo, hi), a1 = uc["ci"]["alpha1"], uc["params"]["alpha1"]
    assert '<td class="l">UC</td><td class="">' in html
    assert f'<td class="">{a1:g} [{lo:g}, {hi:g}]</td>' in html
