"""``florenz-scaling plot DIR``: write every figure of a sweep as PNG and SVG under DIR/plots/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``plot`` sub-command."""
    p = subparsers.add_parser(
        "plot",
        help="draw loss-vs-compute and fit figures into DIR/plots/",
        description="Draw the sweep's figures (loss vs compute with the Pareto frontier and fits, size-data "
        "law, per-pair curves, training curves, residuals) as PNG and SVG under DIR/plots/, with "
        "DIR/plots/index.json listing them for `florenz-scaling report`.",
    )
    p.add_argument("sweep_dir", metavar="DIR", type=Path, help="sweep directory (holds results.csv)")
    p.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=("png", "svg", "pdf"),
        help="file format; repeat for several (default: png and svg)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the figures and print their paths; 1 when the sweep has no collected results."""
    from florenz_scaling.files import SweepDir

    sd = SweepDir(args.sweep_dir)
    if not sd.results_csv.is_file():
        print(
            f"error: {sd.results_csv} not found: run `florenz-scaling collect {sd.root}` first",
            file=sys.stderr,
        )
        return 1
    from florenz_scaling.plot import plot_sweep

    written = plot_sweep(sd.root, tuple(args.formats or ("png", "svg")))
    for path in written:
        print(path)
    return 0
