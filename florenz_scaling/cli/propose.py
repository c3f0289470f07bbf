"""``florenz-scaling propose SWEEP_DIR_OR_CSV --law L --target "P=…,S=…" [--group G | --pair task/lang]
[--pool POOL.yaml|csv] [--k N] [--budget GPU-h] [--json OUT] [--out DIR]``.

Ranks candidate runs by replay's ``adaptive`` criterion (``design.acquire``: the expected reduction of the
target's predictive variance, modes of the fit included, per GPU-hour^0.4) or, for the OLS laws and parameter
targets, by the leave-one-out refits' (``design.propose``)
and, for a sweep, writes ``DIR/next-sweep.yaml`` and ``DIR/next-plan.csv`` (default DIR: SWEEP/design) for
``florenz-scaling launch DIR/next-sweep.yaml --out SWEEP --only RUN_ID ...``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``propose``."""
    p = sub.add_parser("propose", help="rank the next runs by expected target-variance reduction per GPU-h")
    p.add_argument("source", type=Path, help="a sweep directory (results.csv) or a CSV of N, D, C, loss")
    p.add_argument("--law", required=True, help="the law whose target to pin down")
    p.add_argument("--laws", metavar="FILE", help="a YAML file of laws a researcher wrote (see `fit --laws`)")
    p.add_argument(
        "--target",
        required=True,
        help='"P=…,S=…" / "N=…,D=…" / "C=…" (the loss there) or a parameter, e.g. alpha',
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--group", help="the group of pairs to fit (a sweep's table)")
    which.add_argument("--pair", metavar="TASK/LANG", help="one task-language pair (a sweep's table)")
    p.add_argument(
        "--pool",
        type=Path,
        help="candidates: POOL.yaml (sizes × steps) or POOL.csv (N, D, "
        "cost); default: the sweep's grid extended by its sizes and budgets",
    )
    p.add_argument("--sweep", type=Path, help="sweep YAML for costs when SOURCE is a CSV")
    p.add_argument("--k", type=int, help="runs to choose (default 1, or as many as --budget allows)")
    p.add_argument("--budget", type=float, metavar="GPU-h", help="total cost of the chosen runs at most this")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the ranked table as JSON here")
    p.add_argument("--out", type=Path, metavar="DIR", help="where next-sweep.yaml and next-plan.csv go")
    p.add_argument(
        "--method",
        choices=("adaptive", "ensemble", "linearised"),
        help="criterion: replay's adaptive (default for a formula law or chinchilla and a loss target), "
        "leave-one-out refits (the default otherwise; sees misfit) or the linearised law (Fisher)",
    )
    p.set_defaults(func=run)


def _points(args: argparse.Namespace):  # noqa: ANN202 - a pandas DataFrame; pandas stays a lazy import
    from florenz_scaling.design import DesignError
    from florenz_scaling.fit import load_points, select

    if args.pair:
        task, _, lang = args.pair.partition("/")
        if not lang:
            raise DesignError(f"--pair {args.pair!r}: write it as task/lang, e.g. caption/de")
        return select(load_points(args.source, level="pair"), task=task, lang=lang)
    pts = load_points(args.source, level="group")
    if args.group or "group" not in pts.columns:
        return select(pts, group=args.group) if args.group else pts
    groups = sorted(str(g) for g in pts["group"].unique())
    if len(groups) > 1:
        raise DesignError(f"{args.source} has groups {', '.join(groups)}: choose one with --group or --pair")
    return pts


def run(args: argparse.Namespace) -> int:
    """Print the ranked table; write JSON and the next plan; 2 when the law, target or pool cannot be used."""
    from florenz_scaling.design import DesignError, parse_target, read_pool, sweep_pool
    from florenz_scaling.design.propose import format_proposal, propose, write_json, write_next
    from florenz_scaling.files import SweepDir
    from florenz_scaling.spec import load_sweep

    try:
        if args.laws:
            from florenz_scaling.fit import load_laws

            load_laws(args.laws)
        target = parse_target(args.target, args.law)
        spec_path = args.sweep or (SweepDir(args.source).sweep_yaml if args.source.is_dir() else None)
        spec = load_sweep(spec_path) if spec_path is not None and Path(spec_path).exists() else None
        if args.pool:
            pool = read_pool(args.pool, spec)
        elif spec is not None:
            pool = sweep_pool(spec)
        else:
            raise DesignError("no pool: give --pool, or a sweep directory (or --sweep) to extend its grid")
        k = args.k if args.k is not None else (None if args.budget is not None else 1)
        prop = propose(_points(args), args.law, target, pool, k=k, budget=args.budget, method=args.method)
    except (DesignError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    unit = "GPU-h" if spec is not None else "cost"
    print(format_proposal(prop, unit))
    plan: dict[str, object] = {}
    out = args.out or (args.source / "design" if args.source.is_dir() else None)
    chosen = [c for c, _ in prop.chosen]
    if spec is not None and out is not None and chosen and all(c.size for c in chosen):
        yaml_path, csv_path, ids = write_next(spec, chosen, out)
        target_dir = args.source if args.source.is_dir() else Path("SWEEP_DIR")
        cmd = f"florenz-scaling launch {yaml_path} --out {target_dir} " + " ".join(f"--only {i}" for i in ids)
        plan = {"sweep_yaml": str(yaml_path), "plan_csv": str(csv_path), "run_ids": ids, "launch": cmd}
        print(f"wrote {yaml_path} and {csv_path}\nlaunch with: {cmd}")
    if args.json:
        write_json(prop, args.json, {"plan": plan})
        print(f"wrote {args.json}")
    return 0
