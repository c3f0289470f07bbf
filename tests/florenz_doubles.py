"""Test doubles the launcher runs in place of the trainer (importable by worker processes: conftest puts
this folder on PYTHONPATH). ``florenz_doubles:sleep_run`` is the entry point of launcher tests and the
launch benchmark."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from florenz_scaling.files import RunDir


def sleep_run(run_dir: Path) -> int:
    """A trivial run body for launcher tests and benchmarks: sleep ``$FLORENZ_SLEEP_S`` seconds, then write
    ``DONE``. A file ``fail`` in the run directory makes it raise its text instead (a failing run). Like the
    trainer, SIGTERM/SIGUSR1 make it stop early without ``DONE`` (returning 75, "requeue me")."""
    rd = RunDir(run_dir)
    fail = rd.root / "fail"
    if fail.exists():
        raise RuntimeError(fail.read_text().strip() or "asked to fail")
    stop: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda s, _f: stop.append(s)) for sig in (signal.SIGTERM, signal.SIGUSR1)
    }
    try:
        deadline = time.time() + float(os.environ.get("FLORENZ_SLEEP_S", "0"))
        while time.time() < deadline and not stop:
            time.sleep(min(0.1, max(0.0, deadline - time.time())))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stop:
        return 75
    rd.done.write_text("sleep_run\n")
    return 0
