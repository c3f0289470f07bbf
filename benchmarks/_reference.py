"""Reference data for the benchmarks: read from the shared data directory, never from the project."""

from __future__ import annotations

from pathlib import Path

from florenz_scaling.files import reference_data


def reference_data_or_exit(name: str) -> Path:
    """The path of reference data set ``name``; without it the benchmark is skipped, saying why."""
    try:
        return reference_data(name)
    except FileNotFoundError as e:
        print(f"skipped: {e}")
        raise SystemExit(0) from None
