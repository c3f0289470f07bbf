"""``florenz-scaling collect DIR``: the long tables DIR/results.csv (+ .parquet) of held-out losses and
DIR/metrics.csv of generation metrics, grouped by the sweep's reporting groups now."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "collect", help="collect every run's held-out losses and metrics into results.csv and metrics.csv"
    )
    p.add_argument("out", type=Path, help="sweep directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from florenz_scaling.results import CollectWarning, DuplicateRecordsError, collect

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollectWarning)  # printed below, once each
        try:
            table = collect(args.out)
        except DuplicateRecordsError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    metrics = table.attrs["metrics"]
    for p in table.attrs["problems"]:
        print(f"warning: {p}", file=sys.stderr)
    if metrics:
        print(f"{len(metrics)} metric rows -> {args.out / 'metrics.csv'}")
    missing = table.attrs.get("runs_without_records", [])
    runs = table["run_id"].nunique() if len(table) else 0
    print(f"{len(table)} rows from {runs} run(s) -> {args.out / 'results.csv'} (+ .parquet)")
    if missing:
        print(f"{len(missing)} run(s) have no records yet")
    return 0
