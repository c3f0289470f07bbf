"""``florenz-scaling fit``: fit scaling laws to a collected sweep or to any CSV of (N, D, C, loss) points."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from florenz_scaling.cli.isoflop import add_isoflop_arguments, run_isoflop
from florenz_scaling.cli.output import write_json_text

# Kept here (not imported from florenz_scaling.fit) so building the parser imports no numpy/scipy/pandas.
from florenz_scaling.spec import LAWS


def add_parser(subparsers: Any) -> None:
    """Register the ``fit`` sub-command."""
    p = subparsers.add_parser(
        "fit",
        help="fit scaling laws (built-in or written in a YAML file with --laws)",
        description=(
            "Fit scaling laws. INPUT is a sweep directory (reads INPUT/results.csv; without --law every law "
            "is fitted for every group and written to INPUT/fits/<law>-<group>.json) or a CSV with columns "
            "N, D, C, loss (+ optional task, lang, group, run_id)."
        ),
    )
    p.add_argument("input", metavar="INPUT", help="sweep directory or CSV file")
    p.add_argument(
        "--law",
        help="fit one law: a built-in (compute, size-data, chinchilla, saturating-compute, chinchilla-tied, "
        "data-constrained, farseer) or one from --laws (default for a sweep directory: the sweep's laws)",
    )
    add_laws_argument(p)
    p.add_argument(
        "--predict",
        metavar="TARGETS.csv",
        help="predict the loss at each row of TARGETS.csv (the law's input columns) with a 95%% interval "
        "(bootstrap over runs, --bootstrap K resamples, default 1000)",
    )
    p.add_argument("--group", help="fit only this group (SC, UC, ST)")
    p.add_argument("--task", help="fit only this task (with --lang: one pair)")
    p.add_argument("--lang", help="fit only this language (with --task: one pair)")
    p.add_argument(
        "--bootstrap",
        type=int,
        default=None,
        metavar="K",
        help="bootstrap resamples of runs (default: 1000 for a whole sweep, else none)",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument(
        "--budgets",
        type=float,
        nargs="+",
        default=None,
        metavar="C",
        help="compute budgets for derived quantities (N*, D*, L* or L(C)) in the bootstrap",
    )
    p.add_argument(
        "--method",
        choices=("auto", "lbfgs", "varpro"),
        default="auto",
        help="chinchilla/saturating-compute optimiser (auto: varpro when runs are few)",
    )
    p.add_argument("--per-pair", action="store_true", help="sweep: also fit every (task, language) pair")
    p.add_argument(
        "--drop-highest",
        type=int,
        default=0,
        metavar="K",
        help="drop the K highest-loss points first (e.g. 5 for the Chinchilla replication)",
    )
    p.add_argument(
        "--objective",
        choices=("huber-log", "mse-raw"),
        default=None,
        help="objective of the non-linear laws: Huber on log loss or least squares on raw loss (default: "
        "the law's residual space; Huber on log loss for the built-ins of the recipe)",
    )
    p.add_argument(
        "--joint",
        action="store_true",
        help="fit --law jointly over groups: shared exponent(s), per-group coefficients, and the "
        "test of shared vs separate exponents (needs a 'group' column)",
    )
    p.add_argument("--groups", metavar="A,B,...", help="--joint: the groups to fit together (default: all)")
    p.add_argument(
        "--share",
        metavar="P,Q,...",
        help="--joint: the parameters shared across groups (default: the law's own, e.g. its exponents)",
    )
    p.add_argument(
        "--gap",
        metavar="A,B",
        nargs="?",
        const="UC,SC",
        help="fit the gap law log10(L_A/L_B) vs log10 C (default UC,SC) and where it would close",
    )
    p.add_argument("--json", metavar="OUT", help="write the fit as JSON to OUT ('-' for stdout)")
    add_isoflop_arguments(p)
    p.set_defaults(func=run)


def add_laws_argument(p: Any) -> None:
    """``--laws FILE``: laws a researcher wrote (YAML), used like the built-ins (fit, propose, replay)."""
    p.add_argument(
        "--laws",
        metavar="FILE",
        help="a YAML file of laws (laws: {name: {expr, params, response}}); see the README, 'Writing a law'",
    )


def load_law_file(args: argparse.Namespace) -> None:
    """Register the laws of ``--laws`` (if given), then check ``--law`` names a known law."""
    from florenz_scaling.fit import get_law, load_laws

    if getattr(args, "laws", None):
        load_laws(args.laws)
    if getattr(args, "law", None):
        get_law(args.law)


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
        verdict = r.verdict.level if r.verdict else ""
        rows.append((r.law, where, str(r.n_points), r.method, verdict, params, r.status))
    head = ("law", "subset", "n", "method", "verdict", "parameters [95% interval]", "status")
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(head[:5])]
    out = ["  ".join(h.ljust(w) for h, w in zip(head[:5], widths, strict=True)) + "  " + head[5]]
    for row in rows:
        line = "  ".join(c.ljust(w) for c, w in zip(row[:5], widths, strict=True)) + "  " + row[5]
        out.append(line + ("" if row[6] == "converged" else f"  ({row[6]})"))
    for r in results:
        tag = f"{r.law} {r.group or ''}{'/' + r.task if r.task else ''}"
        if r.verdict and r.verdict.reasons:
            out.append(f"  verdict [{tag}]: {r.verdict.text()}")
        for w in r.warnings:
            out.append(f"  warning [{tag}]: {w}")
    return out


def _emit(text: str, args: argparse.Namespace, path: Path, sweep_name: str | None, lines: list[str]) -> None:
    """Print the lines (or the JSON for ``--json -``); write --json OUT and, for a sweep, fits/<name>."""
    if args.json == "-":
        print(text)
    else:
        print("\n".join(lines))
    outs = [Path(args.json)] if args.json and args.json != "-" else []
    if sweep_name and path.is_dir():
        outs.append(path / "fits" / sweep_name)
    for out in outs:
        write_json_text(out, text, say=args.json != "-")


def run_comparison(args: argparse.Namespace, path: Path) -> int:
    """``--joint`` or ``--gap``: a fit across groups, printed and written (to fits/ too for a sweep)."""
    from florenz_scaling.fit import fit_gap, fit_joint, load_points

    points = load_points(path, level="group")
    if args.gap:
        a, _, b = args.gap.partition(",")
        g = fit_gap(points, a.strip(), b.strip())
        lines = [f"gap law {g.name}: {g.form}", f"  {g.evidence}"]
        _emit(g.to_json(), args, path, f"gap-{g.group_a}-{g.group_b}.json", lines)
        return 0
    if args.law is None:
        print("error: --joint needs --law", file=sys.stderr)
        return 1
    groups = [g.strip() for g in args.groups.split(",")] if args.groups else None
    share = tuple(x.strip() for x in args.share.split(",")) if args.share else None
    j = fit_joint(
        points,
        args.law,
        groups,
        objective=args.objective,
        bootstrap=200 if args.bootstrap is None else args.bootstrap,
        seed=args.seed,
        shared=share,
    )
    lines = joint_lines(j)
    _emit(j.to_json(), args, path, f"joint-{args.law}.json", lines)
    return 0


def joint_lines(j: Any) -> list[str]:
    """A joint fit in words: shared and per-group parameters with intervals, then the test."""

    def show(name: str, v: dict[str, Any]) -> str:
        ci = v.get("ci")
        return f"{name}={_fmt(v['value'])}" + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")

    out = [
        f"joint {j.law} over {', '.join(j.groups)} ({j.method}, {j.objective})",
        "  shared: " + ", ".join(show(k, v) for k, v in j.shared.items()),
    ]
    for g in j.groups:
        alone = ", ".join(show(k, v) for k, v in j.separate[g].items())
        own = ", ".join(show(k, v) for k, v in j.per_group[g].items())
        out.append(f"  {g}: {own}   alone: {alone}")
    t = j.test
    p = "n/a" if t.get("p_value") is None else f"{t['p_value']:.3g}"
    stat = "n/a" if t.get("statistic") is None else f"{t['statistic']:.4g}"
    out.append(f"  shared vs separate exponents: statistic {stat}, df {t['df']}, p = {p} ({t['method']})")
    return out + [f"  warning: {w}" for w in j.warnings]


def run(args: argparse.Namespace) -> int:
    """Fit and print; returns 0 on success, 1 when the input cannot be fitted."""
    from florenz_scaling.fit import (
        FitResult,
        fit_points,
        fit_sweep,
        headline_lines,
        load_points,
        select,
        sweep_headline,
    )

    path = Path(args.input)
    if not path.exists():
        print(f"error: {path} does not exist", file=sys.stderr)
        return 1
    try:
        load_law_file(args)
        if args.isoflop:
            return run_isoflop(args, path)
        if args.joint or args.gap:
            return run_comparison(args, path)
        if path.is_dir() and (args.law is None or not (args.group or args.task or args.lang)):
            laws = LAWS if args.law is None else (args.law,)
            k = 1000 if args.bootstrap is None else args.bootstrap
            written = fit_sweep(
                path,
                laws=laws,
                bootstrap=k,
                per_pair=args.per_pair,
                seed=args.seed,
                budgets=args.budgets,
                objective=args.objective,
            )
            results = [
                FitResult.from_json(p.read_text())
                for p in written
                if p.name.startswith(tuple(f"{x}-" for x in laws))
            ]
            print("\n".join(summary_lines(results)))
            more = len(written) - len(results)
            also = f" and {more} comparison(s) across groups" if more else ""
            print(f"wrote {len(results)} fit(s){also} to {path / 'fits'}")
            print("\n".join(headline_lines(sweep_headline(path))))
            return 0 if written else 1
        if args.law is None:
            print("error: --law is required for a CSV input", file=sys.stderr)
            return 1
        level = "pair" if (args.task or args.lang) else "group"
        points = load_points(path, level=level)
        points = select(points, group=args.group, task=args.task, lang=args.lang)
        if args.drop_highest:
            points = points.sort_values("loss", kind="stable").iloc[: len(points) - args.drop_highest]
        res = fit_points(
            points,
            args.law,
            bootstrap=(1000 if args.bootstrap is None else args.bootstrap)
            if args.predict
            else args.bootstrap or 0,
            seed=args.seed,
            budgets=args.budgets,
            method=args.method,
            objective=args.objective,
            group=args.group,
            task=args.task,
            lang=args.lang,
        )
        if args.predict:
            return _predict(args, res, points)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json == "-":
        print(res.to_json())
        return 0
    print("\n".join(summary_lines([res])))
    if res.verdict is not None and not res.verdict.shown:
        print(f"not shown as a result: {res.law} is {res.verdict.text()} (kept in the JSON)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(res.to_json() + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def _predict(args: argparse.Namespace, res: Any, points: Any) -> int:
    """``--predict``: the fit, then each target row's prediction with its bootstrap interval."""
    import json

    from florenz_scaling.fit import predict_targets, read_targets

    k = 1000 if args.bootstrap is None else args.bootstrap
    out = predict_targets(res, points, read_targets(args.predict), n=k, seed=args.seed)
    out["fit"] = res.to_dict()
    text = json.dumps(out, indent=2, allow_nan=False)
    if args.json == "-":
        print(text)
        return 0
    print("\n".join(summary_lines([res])))
    print("\n".join(prediction_lines(out)))
    if args.json:
        write_json_text(Path(args.json), text)
    return 0


def prediction_lines(out: dict[str, Any]) -> list[str]:
    """Each target's inputs, prediction and interval (and the observed loss, when the targets have one)."""
    pct = f"{100 * out['level']:g}%"
    lines = [f"predictions of {out['law']} [{pct} interval: {out['interval']}, {out['n_ok']} resamples]"]
    for row in out["predictions"]:
        where = ", ".join(
            f"{k}={v:.4g}" for k, v in row.items() if k not in ("prediction", "lower", "upper", "observed")
        )
        iv = "n/a" if row["lower"] is None else f"[{_fmt(row['lower'])}, {_fmt(row['upper'])}]"
        seen = f"  observed {_fmt(row['observed'])}" if "observed" in row else ""
        lines.append(f"  {where}: {_fmt(row['prediction'])} {iv}{seen}")
    if out.get("r2") is not None:
        lines.append(f"  R² on the targets: {out['r2']:.4f}")
    return lines
