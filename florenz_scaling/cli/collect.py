"""``florenz-scaling collect DIR``: the long table DIR/results.csv (+ .parquet) of held-out losses."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("collect", help="collect every run's held-out losses into results.csv/.parquet")
    p.add_argument("out", type=Path, help="sweep directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from florenz_scaling.results import (
        CollectWarning,
        DuplicateMetricsError,
        DuplicateRecordsError,
        MetricsWarning,
        collect,
        collect_metrics,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollectWarning)  # printed below, once each
        warnings.simplefilter("ignore", MetricsWarning)
        try:
            table = collect(args.out)
            metrics, report = collect_metrics(args.out)
        except (DuplicateRecordsError, DuplicateMetricsError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    for p in [*table.attrs.get("problems", []), *report.problems]:
        print(f"warning: {p}", file=sys.stderr)
    if metrics:
        print(f"{len(metrics)} metric rows -> {args.out / 'metrics.csv'}")
    missing = table.attrs.get("runs_without_records", [])
    runs = table["run_id"].nunique() if len(table) else 0
    print(f"{len(table)} rows from {runs} run(s) -> {args.out / 'results.csv'} (+ .parquet)")
    if missing:
        print(f"{len(missing)} run(s) have no records yet")
    return 0
