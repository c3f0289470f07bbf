"""``florenz-scaling cancel DIR [--only RUN_ID]``: cancel the sweep's queued and running jobs."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``cancel``."""
    p = sub.add_parser(
        "cancel", help="cancel queued and running jobs (scancel / SIGTERM); runs keep checkpoints"
    )
    p.add_argument("out", type=Path, help="sweep directory")
    p.add_argument("--only", action="append", default=[], metavar="RUN_ID", help="cancel only this run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Cancel the live jobs and say which runs were stopped (their checkpoints stay)."""
    from florenz_scaling.launch import cancel

    done = cancel(args.out, tuple(args.only))
    for run_id, job_id in done:
        print(f"cancelled {run_id} (job {job_id})")
    print(f"{len(done)} run(s) cancelled; launch again to resume them from their checkpoints")
    return 0
