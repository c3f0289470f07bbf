"""Third-party reference data is read from the shared data directory, never kept in the project."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from florenz_scaling.files import REFERENCE_DATA_ENV, reference_data


def test_the_variable_points_elsewhere_and_a_missing_set_names_the_variable(tmp_path, monkeypatch):
    (tmp_path / "pool.csv").write_text("N,D,loss\n")
    monkeypatch.setenv(REFERENCE_DATA_ENV, str(tmp_path))
    assert reference_data("pool.csv") == tmp_path / "pool.csv"
    with pytest.raises(FileNotFoundError, match=REFERENCE_DATA_ENV) as e:
        reference_data("absent.csv")
    assert str(tmp_path / "absent.csv") in str(e.value)


def test_no_reference_data_file_is_committed(repo: Path, monkeypatch):
    monkeypatch.delenv(REFERENCE_DATA_ENV, raising=False)
    try:
        shared = reference_data(".")
    except FileNotFoundError as e:
        pytest.skip(str(e))

    def digest(path: Path) -> str:
        return hashlib.sha1(path.read_bytes()).hexdigest()

    borrowed = {digest(p): p.name for p in shared.rglob("*") if p.is_file() and p.suffix != ".md"}
    tracked = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True)
    copies = [f for f in tracked.stdout.split() if (repo / f).is_file() and digest(repo / f) in borrowed]
    assert borrowed and not copies, f"third-party data committed: {copies}"
