"""Figures of a sweep, from its results table and fit results (matplotlib, Agg canvas).

Pure functions return a ``matplotlib.figure.Figure``; ``loss_vs_compute`` also returns the Pareto points it
drew. ``sweep_figures`` builds them all for a sweep directory and ``plot_sweep`` writes them to DIR/plots/
with ``plots/index.json``, the list the report reads (it never draws):

    {"figures": [{"name": "loss_vs_compute", "title": "...", "caption": "...",
                  "files": ["loss_vs_compute.png", "loss_vs_compute.svg"]}, ...]}

in reading order, file names relative to plots/.

- ``loss_vs_compute``        held-out loss vs compute per group, frontier, Eq. 1 fit and the paper's (Fig. 3)
- ``loss_vs_params``         size-data law at a fixed budget with bands and extrapolation (Fig. 4)
- ``loss_vs_samples``        loss vs seen samples per (task, language) pair, a line per size
- ``training_curves``        training and held-out loss vs step, a panel per run
- ``fit_residuals``          residuals of every fit
- ``compute_optimal_frontier``  N*(C) of the Chinchilla fit with its interval
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from florenz_scaling.files import SweepDir, write_atomic
from florenz_scaling.fit import get_law, is_law, load_fits, load_paper
from florenz_scaling.plot.curves import loss_vs_samples, training_curves
from florenz_scaling.plot.data import load_table, load_train_losses
from florenz_scaling.plot.diagnostics import compute_optimal_frontier, fit_residuals
from florenz_scaling.plot.isoflop import isoflop_figures
from florenz_scaling.plot.laws import loss_vs_compute, loss_vs_params
from florenz_scaling.plot.metrics import metric_figures
from florenz_scaling.plot.wsd import wsd_curves


@dataclass(frozen=True)
class SweepFigure:
    """One figure of a sweep: file stem, heading and caption (for the report), and the figure itself."""

    name: str
    title: str
    caption: str
    figure: Figure


def sweep_figures(sweep_dir: str | Path) -> list[SweepFigure]:
    """Every figure of a sweep, in reading order; a missing fit leaves its line (or diagnostic) out."""
    sd = SweepDir(sweep_dir)
    table = load_table(sd.root)
    fits: list[Any] = load_fits(sd.root)
    paper = load_paper(sd.root)
    train = load_train_losses(sd.root, sorted(set(table["run_id"])) if len(table) else None)
    compute = loss_vs_compute(table, fits, paper)
    out = [
        SweepFigure(
            "loss_vs_compute",
            "Held-out loss vs training compute",
            "Final checkpoint of each run (colour: size, marker: seen samples), the Pareto frontier "
            "(gray staircase), the compute law fitted to the frontier with 95% confidence and "
            "prediction bands, and the paper's Eq. 1 (Table 2).",
            compute.figure,
        ),
        SweepFigure(
            "loss_vs_params",
            "Predicted loss vs model size at a fixed seen-samples budget",
            "Size-data law (Eq. 3) with 95% bands; dashed beyond the largest trained size; dots are "
            "runs measured at that budget; the paper's Eq. 3 (Table 3) for comparison.",
            loss_vs_params(table, fits, paper),
        ),
        SweepFigure(
            "loss_vs_samples",
            "Loss vs seen samples per task and language",
            "Final checkpoint of each run, one line per model size.",
            loss_vs_samples(table),
        ),
        SweepFigure(
            "training_curves",
            "Training curves",
            "Training loss and held-out loss of every task-language pair vs optimizer step.",
            training_curves(table, train),
        ),
    ]
    if (wsd := wsd_curves(table)) is not None:
        out.append(
            SweepFigure(
                "wsd_curves",
                "WSD trunk and branches",
                "Held-out group loss vs seen samples of one size: the constant-lr trunk "
                "(dashed) and each branch's decay to its budget (its final point is the "
                "run's measurement).",
                wsd,
            )
        )
    if fits:
        out.append(
            SweepFigure(
                "fit_residuals",
                "Fit residuals",
                "log10(measured / predicted) for each law and group vs compute.",
                fit_residuals(table, fits),
            )
        )
    if any(is_law(f.law) and get_law(f.law).has_allocation and f.group and not f.task for f in fits):
        out.append(
            SweepFigure(
                "compute_optimal",
                "Compute-optimal model size (Chinchilla form)",
                "N*(C) with its bootstrap interval, and the sizes on the measured frontier.",
                compute_optimal_frontier(table, fits),
            )
        )
    out += [SweepFigure(*f) for f in metric_figures(sd.root)]  # only a sweep with metrics.csv has them
    out += [SweepFigure(*f) for f in isoflop_figures(sd.root)]  # only a budget sweep's analysis has them
    return out


INDEX_FILE = "index.json"


def plot_sweep(sweep_dir: str | Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Write every figure of the sweep as DIR/plots/<name>.<fmt>, then DIR/plots/index.json (name, title,
    caption and files of each figure, in reading order); returns the figure files written."""
    sd = SweepDir(sweep_dir)
    sd.plots.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    index = []
    for f in sweep_figures(sd.root):
        files = []
        for fmt in formats:
            path = sd.plots / f"{f.name}.{fmt}"
            f.figure.savefig(path, format=fmt, dpi=110 if fmt == "png" else None)
            files.append(path.name)
            written.append(path)
        index.append({"name": f.name, "title": f.title, "caption": f.caption, "files": files})
    # Written last: an index never lists a figure file that is not there yet.
    write_atomic(sd.plots / INDEX_FILE, json.dumps({"figures": index}, indent=2, ensure_ascii=False) + "\n")
    return written
