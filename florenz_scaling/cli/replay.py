"""``florenz-scaling replay POOL.csv --targets TARGETS.csv --law L [--tolerance T] [--seeds K] [--hindsight]
[--json OUT]``.

Replays the adaptive design on runs that already exist (``design.replay``): each strategy's prediction error
at every target against compute spent, and the fraction of the pool's cost after which every target stays
within the tolerance. ``--hindsight`` adds the cheapest fraction any order from the same pilot could reach
knowing every loss (exhaustive): how much of a strategy's miss is the pool's rather than the criterion's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``replay``."""
    p = sub.add_parser("replay", help="replay the adaptive design on finished runs: what would it save?")
    p.add_argument("pool", type=Path, help="CSV, one row per finished run: N, D, C (its cost), loss")
    p.add_argument("--targets", type=Path, required=True, help="CSV of the points to predict: N, D, loss")
    p.add_argument("--law", required=True, help="the law to fit (chinchilla, saturating-compute, ...)")
    p.add_argument("--laws", metavar="FILE", help="a YAML file of laws a researcher wrote (see `fit --laws`)")
    p.add_argument("--tolerance", type=float, default=0.03, help="relative error that counts as predicted")
    p.add_argument("--seeds", type=int, default=10, help="random orders averaged for the random strategy")
    p.add_argument(
        "--hindsight", action="store_true", help="add the best order knowing every loss (2^runs fits)"
    )
    p.add_argument("--json", type=Path, metavar="OUT", help="write the curves and fractions as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the replay; 2 when the law, pool or targets cannot be used."""
    from florenz_scaling.design import DesignError
    from florenz_scaling.design.replay import DEFAULT_STRATEGIES, format_replay, replay
    from florenz_scaling.files import write_atomic
    from florenz_scaling.fit import load_points

    if not 0 < args.tolerance < 1 or args.seeds < 1:
        print("error: --tolerance must be in (0, 1) and --seeds >= 1", file=sys.stderr)
        return 2
    try:
        if args.laws:
            from florenz_scaling.fit import load_laws

            load_laws(args.laws)
        pool, targets = load_points(args.pool), load_points(args.targets)
        strategies = (*DEFAULT_STRATEGIES, "hindsight") if args.hindsight else DEFAULT_STRATEGIES
        result = replay(
            pool, targets, args.law, tolerance=args.tolerance, seeds=args.seeds, strategies=strategies
        )
    except (DesignError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_replay(result))
    if args.json:
        write_atomic(args.json, json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
