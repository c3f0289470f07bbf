"""Shared test setup: wandb off, DeepSpeed on CPU, a shared extension cache, free ports, reference data,
and the local SLURM cluster (started once per session).

Shared builders that are plain functions live in helper modules beside the tests (``tiny_sweeps``: tiny
sweeps and pollers; ``plot_sweeps``: a synthetic fitted sweep; ``train_runs``: tiny trainer runs;
``fit_tables``, ``checkpoint_dirs``, ``tokenizer_dirs``, ``florenz_doubles``); no test module imports another.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from florenz_scaling.files import reference_data

REPO = Path(__file__).resolve().parents[1]
# wandb is off unless a test checks its mirror (test_train: offline): its init and service cost every trainer
# child about a second of CPU, a hundred children in the suite.
os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "torch_extensions"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Checkpoints are signed with a per-user key (train/manifest.py); the tests use their own.
os.environ.setdefault(
    "FLORENZ_CHECKPOINT_KEY", str(Path.home() / ".cache" / "florenz-scaling-test" / "checkpoint.key")
)
# Worker processes (local slots, SLURM jobs) import the test doubles (florenz_doubles) from here.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")) if p
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under ``-n`` (scripts/test), tests that submit to the one local SLURM cluster share one worker: two
    workers would queue each other's jobs behind the two nodes and wait out each other's timeouts."""
    for item in items:
        if item.get_closest_marker("slurm"):
            item.add_marker(pytest.mark.xdist_group("slurm"))


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def python() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def reference_csv() -> Callable[[str], Path]:
    """``reference_csv(name)``: a reference data set from the shared data directory
    (``$FLORENZ_REFERENCE_DATA`` overrides it), or the test is skipped with the reason."""

    def find(name: str) -> Path:
        try:
            return reference_data(name)
        except FileNotFoundError as e:
            pytest.skip(str(e))

    return find


@pytest.fixture(scope="session")
def chinchilla_epoch(reference_csv: Callable[[str], Path]) -> Path:
    """Epoch's replication of Chinchilla's Fig. 4 (245 runs)."""
    return reference_csv("chinchilla_epoch.csv")


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """The two-node SLURM cluster on localhost (``scripts/slurm-local start``, idempotent; it installs SLURM
    with apt when missing). Skips only where that is impossible: not root, no apt-get, no package mirror."""
    have = shutil.which("slurmctld") and shutil.which("slurmdbd")
    if not have and (os.geteuid() != 0 or shutil.which("apt-get") is None):
        pytest.skip("SLURM is not installed and cannot be (needs root and apt-get)")
    r = subprocess.run(
        [str(REPO / "scripts" / "slurm-local"), "start"],
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    if r.returncode != 0 and "apt-get" in r.stderr and not have:
        pytest.skip(f"apt cannot install SLURM here: {r.stderr.strip()[-500:]}")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture
def slurm_env(slurm_cluster: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that submits to the local cluster: jobs inherit the environment through sbatch, so no wandb."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
