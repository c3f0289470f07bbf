"""``florenz-scaling fit``: fit scaling laws to a collected sweep or to any CSV of (N, D, C, loss) points."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

# Kept here (not imported from florenz_scaling.fit) so building the parser imports no numpy/scipy/pandas.
from florenz_scaling.spec import LAWS


def add_parser(subparsers: Any) -> None:
    """Register the ``fit`` sub-command."""
    p = subparsers.add_parser(
        "fit",
        help="fit scaling laws (compute, size-data, chinchilla, saturating-compute)",
        description=(
            "Fit scaling laws. INPUT is a sweep directory (reads INPUT/results.csv; without --law every law "
            "is fitted for every group and written to INPUT/fits/<law>-<group>.json) or a CSV with columns "
            "N, D, C, loss (+ optional task, lang, group, run_id)."
        ),
    )
    p.add_argument("input", metavar="INPUT", help="sweep directory or CSV file")
    p.add_argument("--law", choices=LAWS, help="fit one law (default for a sweep directory: all laws)")
    p.add_argument("--group", help="fit only this group (SC, UC, ST)")
    p.add_argument("--task", help="fit only this task (with --lang: one pair)")
    p.add_argument("--lang", help="fit only this language (with --task: one pair)")
    p.add_argument("--bootstrap", type=int, default=None, metavar="K",
                   help="bootstrap resamples of runs (default: 1000 for a whole sweep, else none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--budgets", type=float, nargs="+", default=None, metavar="C",
                   help="compute budgets for derived quantities (N*, D*, L* or L(C)) in the bootstrap")
    p.add_argument("--method", choices=("auto", "lbfgs", "varpro"), default="auto",
                   help="chinchilla/saturating-compute optimiser (auto: varpro when runs are few)")
    p.add_argument("--per-pair", action="store_true", help="sweep: also fit every (task, language) pair")
    p.add_argument("--drop-highest", type=int, default=0, metavar="K",
                   help="drop the K highest-loss points first (e.g. 5 for the Chinchilla replication)")
    p.add_argument("--json", metavar="OUT", help="write the fit as JSON to OUT ('-' for stdout)")
    p.set_defaults(func=run)


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def summary_lines(results: list[Any]) -> list[str]:
    """A readable table: one row per fit, parameters with their [low, high] intervals."""
    rows = []
    for r in results:
        where = r.group or "-"
        if r.task:
            where = f"{r.task}/{r.lang}"
        params = ", ".join(
            f"{k}={_fmt(v)}" + (f" [{_fmt(r.ci[k][0])}, {_fmt(r.ci[k][1])}]" if k in r.ci else "")
            for k, v in r.params.items()
        )
        rows.append((r.law, where, str(r.n_points), r.method, params, r.status))
    head = ("law", "subset", "n", "method", "parameters [95% interval]", "status")
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(head[:4])]
    out = ["  ".join(h.ljust(w) for h, w in zip(head[:4], widths, strict=True)) + "  " + head[4]]
    for row in rows:
        line = "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        out.append(line + ("" if row[5] == "converged" else f"  ({row[5]})"))
    for r in results:
        for w in r.warnings:
            out.append(f"  warning [{r.law} {r.group or ''}{'/' + r.task if r.task else ''}]: {w}")
    return out


def run(args: argparse.Namespace) -> int:
    """Fit and print; returns 0 on success, 1 when the input cannot be fitted."""
    from florenz_scaling.fit import FitResult, fit_points, fit_sweep, load_points, select

    path = Path(args.input)
    if not path.exists():
        print(f"error: {path} does not exist", file=sys.stderr)
        return 1
    try:
        if path.is_dir() and (args.law is None or not (args.group or args.task or args.lang)):
            laws = LAWS if args.law is None else (args.law,)
            k = 1000 if args.bootstrap is None else args.bootstrap
            written = fit_sweep(path, laws=laws, bootstrap=k, per_pair=args.per_pair, seed=args.seed,
                                budgets=args.budgets)
            results = [FitResult.from_json(p.read_text()) for p in written]
            print("\n".join(summary_lines(results)))
            print(f"wrote {len(written)} fit(s) to {path / 'fits'}")
            return 0 if written else 1
        if args.law is None:
            print("error: --law is required for a CSV input", file=sys.stderr)
            return 1
        level = "pair" if (args.task or args.lang) else "group"
        points = load_points(path, level=level)
        points = select(points, group=args.group, task=args.task, lang=args.lang)
        if args.drop_highest:
            points = points.sort_values("loss", kind="stable").iloc[: len(points) - args.drop_highest]
        res = fit_points(points, args.law, bootstrap=args.bootstrap or 0, seed=args.seed,
                         budgets=args.budgets, method=args.method, group=args.group, task=args.task,
                         lang=args.lang)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json == "-":
        print(res.to_json())
        return 0
    print("\n".join(summary_lines([res])))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(res.to_json() + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0
