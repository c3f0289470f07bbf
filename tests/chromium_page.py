"""Headless Chromium as the report tests run it: Debian's /usr/bin/chromium (``scripts/install-chromium``),
offline, with a profile of its own, so that a page renders from its file alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=10000",
)
skip_without_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed: run scripts/install-chromium"
)


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Chromium run once with ``args`` (e.g. ``--dump-dom URI``), its profile under ``tmp``."""
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
