"""``fit INPUT --isoflop`` and ``run``'s IsoFLOP stage: the three approaches on a compute-budget sweep.

Kept apart from ``cli.fit`` so that command gains two lines: the arguments (``add_isoflop_arguments``) and
the branch (``run_isoflop``). A sweep directory's budgets are its plan's (``budget_gmacs``); a CSV's are its
distinct C values, or ``--budgets`` bins them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from florenz_scaling.cli.output import write_json_text


def add_isoflop_arguments(p: argparse.ArgumentParser) -> None:
    """``--isoflop`` (``--budgets``, ``--law``, ``--bootstrap``, ``--seed``, ``--json`` as for a fit)."""
    p.add_argument(
        "--isoflop",
        action="store_true",
        help="compute-optimal N and D per budget by Chinchilla's three approaches (IsoFLOP profiles, the "
        "envelope, the --law's allocation, default chinchilla) and their exponents of C; --budgets C ... "
        "bins a CSV's runs to the nearest budget; a sweep directory writes DIR/fits/isoflop/<group>.json",
    )


def plan_budgets(sweep_dir: str | Path) -> dict[str, float]:
    """run_id -> the budget (GMACs) the plan sized it for; empty for a sweep without budgets or plan."""
    from florenz_scaling.files import SweepDir
    from florenz_scaling.plan import read_plan

    if not SweepDir(sweep_dir).plan_csv.exists():
        return {}
    return {r["run_id"]: float(r["budget_gmacs"]) for r in read_plan(sweep_dir) if r.get("budget_gmacs")}


def run_isoflop(args: argparse.Namespace, path: Path) -> int:
    """``fit INPUT --isoflop``: print each budget's minimum and the exponents; ``--json OUT`` writes them."""
    from florenz_scaling.fit import analyse_isoflop, load_points, select, write_isoflop
    from florenz_scaling.fit.isoflop import IsoFLOP
    from florenz_scaling.fit.isoflop_io import budget_lines

    law = args.law or "chinchilla"
    k = 1000 if args.bootstrap is None else args.bootstrap
    if path.is_dir():
        written = write_isoflop(path, plan_budgets(path), law=law, n_boot=k, seed=args.seed)
        results = [IsoFLOP.from_json(p.read_text(encoding="utf-8")) for p in written]
        if args.group:
            results = [r for r in results if r.group == args.group]
    else:
        points = load_points(path)
        if args.group or args.task or args.lang:
            points = select(points, group=args.group, task=args.task, lang=args.lang)
        if args.drop_highest:
            points = points.sort_values("loss", kind="stable").iloc[: -args.drop_highest]
        results = [analyse_isoflop(points, budgets=args.budgets, law=law, n_boot=k, seed=args.seed)]
    if not results:
        print("error: no group to analyse", file=sys.stderr)
        return 1
    out = results[0].to_dict() if len(results) == 1 else {"groups": {r.group: r.to_dict() for r in results}}
    text = json.dumps(_strict(out), indent=2, allow_nan=False)
    if args.json == "-":
        print(text)
        return 0
    for r in results:
        if r.group:
            print(f"== group {r.group}")
        print("\n".join(budget_lines(r)))
    if args.json:
        write_json_text(Path(args.json), text)
    return 0


def _strict(x: Any) -> Any:
    from florenz_scaling.fit.isoflop import _finite

    return _finite(x)


def isoflop_stage(spec: Any, sd: Any, log: Callable[[str], None], current: Callable[..., bool]) -> None:
    """``run``'s stage after the fits: a budget sweep's IsoFLOP analysis, unless it is newer than its
    inputs (``current(outputs, inputs)``); other sweeps have no budgets and skip it."""
    if getattr(spec, "budget", None) is None:
        return
    from florenz_scaling.fit import write_isoflop
    from florenz_scaling.fit.isoflop_io import ISOFLOP_DIR

    out = sd.fits / ISOFLOP_DIR
    done = sorted(out.glob("*.json")) if out.is_dir() else []
    if _current_or(current, done, [sd.results_csv, sd.sweep_yaml, sd.plan_csv]):
        log(f"isoflop: current ({len(done)} group(s))")
        return
    written = write_isoflop(sd.root, plan_budgets(sd.root), n_boot=spec.fit.bootstrap)
    for p in written:
        from florenz_scaling.fit.isoflop import IsoFLOP

        log(f"isoflop: {p.stem}: {IsoFLOP.from_json(p.read_text(encoding='utf-8')).headline()}")


def _current_or(current: Callable[..., bool], outputs: list[Path], inputs: list[Path]) -> bool:
    return bool(outputs) and current(outputs, inputs)


def add_next_budget_arguments(p: argparse.ArgumentParser) -> None:
    """``plan SWEEP_DIR --next-budget C [--sizes K] [--next-out FILE]``."""
    p.add_argument(
        "--next-budget",
        type=float,
        metavar="C",
        help="SWEEP is a finished budget sweep's directory: write a sweep YAML for a new budget C (GMACs), "
        "K registry sizes around its predicted N_opt(C) (approach 2, else 3), then plan it",
    )
    p.add_argument("--sizes", type=int, default=5, metavar="K", help="--next-budget: how many sizes (5)")
    p.add_argument(
        "--next-out", type=Path, metavar="FILE", help="--next-budget: where (DIR/next-budget-C.yaml)"
    )


def run_next_budget(args: argparse.Namespace) -> int:
    """Write the next budget's sweep, say where N_opt came from and which sizes, and print its plan."""
    from florenz_scaling.design.next_budget import next_budget
    from florenz_scaling.plan import format_plan, make_plan
    from florenz_scaling.spec import load_sweep

    try:
        nb = next_budget(args.sweep, args.next_budget, args.sizes, args.next_out)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(nb.note)
    spec = load_sweep(nb.path)
    print(format_plan(spec, make_plan(spec)))
    print(f"wrote {nb.path}")
    return 0
