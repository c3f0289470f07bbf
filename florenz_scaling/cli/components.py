"""``florenz-scaling components build SWEEP.yaml [--out DIR] [--cache DIR] [--workers N]``: the tiny
pretrained components (Florence-2 stages A+B, Gemma-2 LM) a sweep with a ``components:`` section uses."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from florenz_scaling.cli.plan import add_spec_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``components``."""
    p = sub.add_parser("components", help="build (or reuse) the tiny pretrained components of a sweep")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    b = verbs.add_parser("build", help="build the components the sweep's `components:` section asks for")
    add_spec_args(b)
    b.add_argument(
        "--out", type=Path, help="sweep directory (its data/ holds the tokenizer); default runs/<sweep name>"
    )
    b.add_argument(
        "--cache",
        type=Path,
        help="component cache (default: components.cache, else "
        "$FLORENZ_COMPONENTS_CACHE, else ~/.cache/florenz-scaling/components)",
    )
    b.add_argument(
        "--workers",
        type=int,
        help="builds at a time (default: launch.array_parallelism, at most the CPU count)",
    )
    b.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build what is missing and print, per size, the directories ``pretrained:`` now points at."""
    from florenz_scaling.pretrain import build_components, read_component, summary, with_components
    from florenz_scaling.spec import load_sweep

    spec = load_sweep(args.sweep, args.override)
    if spec.components is None:
        print(f"error: {args.sweep} has no `components:` section: nothing to build", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    report = build_components(
        spec, args.out or Path("runs") / spec.name, cache=args.cache, workers=args.workers
    )
    for comp in report.plan.components:
        state = f"built in {report.built[comp.name]:.0f} s" if comp.name in report.built else "cached"
        print(f"{comp.name}  {state}  {summary(read_component(report.directory(comp)))}")
    for size, pre in sorted(with_components(spec, report).pretrained.items()):
        print(f"{size}: florence={pre.florence}" + (f" gemma={pre.gemma}" if pre.gemma else ""))
    print(
        f"{len(report.built)} built, {len(report.reused)} reused in {time.perf_counter() - t0:.0f} s "
        f"({report.cache})"
    )
    return 0
