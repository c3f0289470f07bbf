"""``florenz-scaling report DIR``: write the self-contained HTML report DIR/report.html."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``report`` sub-command."""
    p = subparsers.add_parser(
        "report",
        help="write DIR/report.html: plan, run states, fits and figures in one file",
        description="Write one self-contained HTML page (figures embedded, no network) with the plan, run "
        "states, fitted coefficients next to the paper's, and every figure that "
        "`florenz-scaling plot DIR` drew (listed in DIR/plots/index.json).",
    )
    p.add_argument("sweep_dir", metavar="DIR", type=Path, help="sweep directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the report and print where it is."""
    from florenz_scaling.report import write_report

    path = write_report(args.sweep_dir)
    print(f"report: {path.resolve()}")
    return 0
