"""Cancel a sweep's live jobs (``scancel`` on SLURM, SIGTERM to local slots) and record it in the ledger."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from florenz_scaling.files import SweepDir
from florenz_scaling.launch.ledger import Event, Ledger


def cancel(out: str | Path, only: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Cancel the live jobs of a sweep (``scancel`` / SIGTERM); returns ``(run_id, job_id)`` cancelled."""
    from florenz_scaling.launch.status import sweep_status

    sd = SweepDir(out)
    live = [r for r in sweep_status(out) if r.state in ("queued", "running")]
    rows = [r for r in live if not only or r.run_id in only]
    # A local slot is one process for several runs: stopping it stops all of them, so record all of them.
    pids = {r.job_id for r in rows if r.executor == "local"}
    rows += [r for r in live if r.executor == "local" and r.job_id in pids and r not in rows]
    slurm_ids = sorted({r.job_id for r in rows if r.executor == "slurm"})
    if slurm_ids:
        subprocess.run(["scancel", *slurm_ids], check=False)
    for pid in sorted({r.job_id for r in rows if r.executor == "local"}):
        try:
            # The controller forwards SIGTERM to its tasks; the trainer checkpoints and the slot stops.
            os.kill(int(pid), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass
    Ledger(sd.ledger).append(
        Event(time.time(), "cancelled", r.run_id, r.job_id, r.executor, r.log) for r in rows
    )
    return [(r.run_id, r.job_id) for r in rows]
