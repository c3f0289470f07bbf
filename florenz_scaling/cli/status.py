"""``florenz-scaling status DIR``: one line per run (state, job, steps, latest losses), failures with logs."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``status``."""
    p = sub.add_parser("status", help="state, job id, steps done and latest losses of every run")
    p.add_argument("out", type=Path, help="sweep directory")
    p.add_argument("--json", action="store_true", help="print one JSON object per run instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print every run's state; exit 1 when a run failed (so scripts and CI notice), 2 without a sweep."""
    from florenz_scaling.launch.status import format_status, sweep_status

    if not args.out.is_dir():
        print(f"error: {args.out} is not a sweep directory")
        return 2
    rows = sweep_status(args.out)
    if args.json:
        for r in rows:
            print(json.dumps(asdict(r), sort_keys=True))
    else:
        print(format_status(rows))
    return 1 if any(r.state == "failed" for r in rows) else 0
