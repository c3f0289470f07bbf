"""``florenz-scaling replay POOL.csv --targets TARGETS.csv --law L [--laws FILE] [--json OUT]``, two modes.

Budgets (ScaleBench's protocol, ``design.budget``): ``--budgets 0.01,0.05,0.10 --cost "6*N*D" --score r2
--repeats 10`` buys runs within each fraction of the pool's cost for every strategy (ours ``adaptive``,
V-optimal, D-optimal, random, cheapest first, cost-weighted random, all data) and prints the target-region
R² (clipped to [−1, 1]) as mean ± std over the repeats, with a progress line per strategy and repeat.
``--cost`` is an expression over the pool's columns, parsed by the same whitelist as a law's formula;
``--rename N=params,D=tokens`` maps the pool's and targets' columns onto the law's inputs.

Tolerance (the default without ``--budgets``):
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
    b = p.add_argument_group("budgets (ScaleBench's protocol)")
    b.add_argument("--budgets", help="fractions of the pool's total cost, e.g. 0.01,0.05,0.10")
    b.add_argument("--cost", default="6*N*D", help="a run's cost: an expression over the pool's columns")
    b.add_argument(
        "--score", default="r2", choices=("r2",), help="target-region score (R² clipped to [-1, 1])"
    )
    b.add_argument("--repeats", type=int, default=10, help="repeats (seeds) per strategy")
    b.add_argument("--seed", type=int, default=0, help="the first repeat's seed")
    b.add_argument("--starts", type=int, default=64, help="random starts of each scored fit")
    b.add_argument("--strategies", help="comma-separated subset of the strategies (default: all)")
    b.add_argument(
        "--rename", default="", help="LAW_INPUT=column,... when the CSVs name the inputs otherwise"
    )
    p.set_defaults(func=run)


def run_budgets(args: argparse.Namespace) -> int:
    """The ScaleBench protocol on the pool; 2 when the inputs cannot be used."""
    from florenz_scaling.design.budget import STRATEGIES, benchmark, format_benchmark, make_task, pool_cost
    from florenz_scaling.files import write_atomic
    from florenz_scaling.fit import get_law, load_laws

    try:
        budgets = sorted(float(x) for x in args.budgets.split(",") if x.strip())
        if not budgets or not all(0 < x <= 1 for x in budgets) or args.repeats < 1 or args.starts < 1:
            raise ValueError("--budgets must be fractions in (0, 1]; --repeats and --starts at least 1")
        strategies = tuple(args.strategies.split(",")) if args.strategies else STRATEGIES
        bad = [x for x in strategies if x not in STRATEGIES]
        if bad:
            raise ValueError(f"unknown strategy {bad[0]!r}; choose from {', '.join(STRATEGIES)}")
        if args.laws:
            load_laws(args.laws)
        law = get_law(args.law)
        (raw, pool), (_, targets) = (_read(p, args.rename) for p in (args.pool, args.targets))
        # the cost may name the CSV's own columns or the law's inputs they were renamed to
        both = pool.join(raw[[c for c in raw.columns if c not in pool.columns]])
        task = make_task(law, pool, targets, pool_cost(both, args.cost))
    except (FileNotFoundError, ValueError) as e:  # LawError and ExpressionError are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 2
    bar = sys.stderr.isatty()

    def progress(strategy: str, r: int, res: dict) -> None:
        r2 = " ".join(f"{x:+.2f}" for x in res["r2"])
        end = "\r" if bar and r + 1 < args.repeats else "\n"
        done = "#" * (r + 1) + "." * (args.repeats - r - 1)
        print(
            f"{strategy:15s} [{done}] repeat {r + 1}/{args.repeats}: R² {r2} ({res['seconds']:.1f} s, "
            f"{res['fits']} fits)",
            end=end,
            file=sys.stderr,
            flush=True,
        )

    result = benchmark(
        task,
        budgets,
        strategies=strategies,
        repeats=args.repeats,
        seed=args.seed,
        n_starts=args.starts,
        progress=progress,
    )
    result.update(law=law.name, cost=args.cost, score=args.score)
    print(format_benchmark(result))
    if args.json:
        write_atomic(args.json, json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _read(path: Path, rename: str) -> tuple:
    import pandas as pd

    t = pd.read_csv(path)
    pairs = [x.split("=", 1) for x in rename.split(",") if x.strip()]
    if any(len(x) != 2 for x in pairs):
        raise ValueError(f"--rename {rename!r}: write LAW_INPUT=column,...")
    missing = [c for _, c in pairs if c not in t.columns]
    if missing:
        raise ValueError(f"{path}: no column {missing[0]!r} (has {', '.join(map(str, t.columns))})")
    return t, t.rename(columns={c: k for k, c in pairs})


def run(args: argparse.Namespace) -> int:
    """Print the replay; 2 when the law, pool or targets cannot be used."""
    if args.budgets:
        return run_budgets(args)
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
