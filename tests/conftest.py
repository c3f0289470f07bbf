"""Shared test setup: offline wandb, DeepSpeed on CPU, a shared extension cache, free ports."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from florenz_scaling.files import reference_data

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("WANDB_MODE", "offline")
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
