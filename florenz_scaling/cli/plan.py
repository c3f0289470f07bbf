"""``florenz-scaling plan SWEEP.yaml [-o key=value ...] [--out DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_spec_args(p: argparse.ArgumentParser) -> None:
    """The sweep file and its dotted overrides, shared by every command that reads a sweep."""
    p.add_argument("sweep", type=Path, help="sweep YAML file")
    p.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dotted override, e.g. -o train.lr=2e-4 (repeatable)",
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``plan``."""
    p = sub.add_parser("plan", help="expand a sweep into runs with P, P_t, F, S, C and estimated cost")
    add_spec_args(p)
    p.add_argument("--out", type=Path, help="sweep directory to write plan.csv and sweep.yaml into")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the plan table; with ``--out``, also write plan.csv and sweep.yaml there."""
    from florenz_scaling.plan import format_plan, make_plan, write_plan
    from florenz_scaling.spec import load_sweep

    spec = load_sweep(args.sweep, args.override)
    plan = make_plan(spec)
    print(format_plan(spec, plan))
    if args.out:
        write_plan(spec, plan, args.out)
        print(f"wrote {args.out / 'plan.csv'} and {args.out / 'sweep.yaml'}")
    return 0
