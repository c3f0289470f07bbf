"""``florenz-scaling train RUN_DIR``: train one run (what each launched job runs; also by hand or torchrun).

Exit status: 0 when the run is done (or was already), 75 (``EXIT_PREEMPTED``) when a SIGTERM/SIGUSR1 made it
checkpoint and stop early so that it can be requeued, 1 on failure.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``train RUN_DIR``."""
    p = sub.add_parser(
        "train",
        help="train one run (runs/<id>/ with run.yaml); resumes from its last checkpoint, no-op once DONE",
        description="Train the run in RUN_DIR with DeepSpeed. Works as one process or under torchrun / srun "
        "(reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). Exit 75 = preempted, requeue.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory holding run.yaml")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train the run; returns the trainer's exit code."""
    from florenz_scaling.train.run import main  # torch and DeepSpeed load only for this command

    if not (args.run_dir / "run.yaml").is_file():
        print(f"error: {args.run_dir} has no run.yaml (expected a sweep's runs/<run_id>/ directory)")
        return 2
    return main(args.run_dir)
