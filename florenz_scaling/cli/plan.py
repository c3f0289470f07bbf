"""``florenz-scaling plan SWEEP.yaml [-o key=value ...] [--out DIR] [--check [--law L ...]]``.

``--check`` warns, before anything runs, when the planned design cannot identify a law it is meant for
(``design.check``: too few points or levels, too little tokens-per-parameter spread, a high condition
number); the plan itself stays importable without ``fit``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from florenz_scaling.cli.isoflop import add_next_budget_arguments, run_next_budget


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
    p.add_argument("--check", action="store_true", help="warn when the design cannot identify its laws")
    p.add_argument("--law", action="append", default=[], help="law to check (repeatable; default fit.laws)")
    p.add_argument("--strict", action="store_true", help="with --check: exit 1 when there is a warning")
    add_next_budget_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the plan table; with ``--out``, also write plan.csv and sweep.yaml there."""
    from florenz_scaling.plan import format_plan, make_plan, write_plan
    from florenz_scaling.spec import load_sweep

    if args.next_budget is not None:
        return run_next_budget(args)
    spec = load_sweep(args.sweep, args.override)
    plan = make_plan(spec)
    print(format_plan(spec, plan))
    if args.out:
        write_plan(spec, plan, args.out)
        print(f"wrote {args.out / 'plan.csv'} and {args.out / 'sweep.yaml'}")
    if args.check:
        return _check(spec, args.law, args.strict)
    return 0


def _check(spec: object, laws: list[str], strict: bool) -> int:
    """Print the design's identifiability warnings; 2 for an unknown law, 1 with ``strict`` and warnings."""
    import sys

    from florenz_scaling.design import DesignError, check_plan

    try:
        findings = check_plan(spec, laws or None)
    except DesignError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for f in findings:
        print(f"warning: {f}")
    checked = ", ".join(laws or spec.fit.laws)  # type: ignore[attr-defined]
    print(
        f"check: {len(findings)} warning(s) for {checked}"
        if findings
        else f"check: the design can identify {checked}"
    )
    return 1 if strict and findings else 0
