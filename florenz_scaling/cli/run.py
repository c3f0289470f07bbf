"""``florenz-scaling run SWEEP.yaml --out DIR [--executor ...]``: plan → launch → wait → collect → fit →
plot → report, each stage skipped when its outputs are current."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from florenz_scaling.cli.launch import add_executor_arg
from florenz_scaling.cli.plan import add_spec_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the whole study: plan, launch, wait, collect, fit, plot, report")
    add_spec_args(p)
    p.add_argument("--out", type=Path, required=True, help="sweep directory")
    add_executor_arg(p)
    p.add_argument("--poll", type=float, default=5.0, metavar="S", help="seconds between status polls")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from florenz_scaling.cli.pipeline import PipelineError, run_pipeline
    from florenz_scaling.launch.submit import LaunchError

    try:
        report = run_pipeline(args.sweep, args.out, args.override, executor=args.executor, poll_s=args.poll)
    except (PipelineError, LaunchError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"open {report.resolve()}")
    return 0
