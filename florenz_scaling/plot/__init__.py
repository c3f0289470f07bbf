"""Figures of a sweep as pure functions of (results table, fit results), matplotlib on the Agg canvas.

``plot_sweep`` writes every figure to ``DIR/plots/<name>.png|svg`` with ``plots/index.json`` (name, title,
caption, files), which is all the report reads. Fits and the paper's coefficients are read with
``florenz_scaling.fit.load_fits`` / ``load_paper``.
"""

from florenz_scaling.plot.curves import loss_vs_samples, training_curves
from florenz_scaling.plot.data import load_table, load_train_losses
from florenz_scaling.plot.diagnostics import compute_optimal_frontier, fit_residuals
from florenz_scaling.plot.laws import ComputePlot, loss_vs_compute, loss_vs_params
from florenz_scaling.plot.sweep import INDEX_FILE, SweepFigure, plot_sweep, sweep_figures

__all__ = [
    "INDEX_FILE",
    "ComputePlot",
    "SweepFigure",
    "compute_optimal_frontier",
    "fit_residuals",
    "load_table",
    "load_train_losses",
    "loss_vs_compute",
    "loss_vs_params",
    "loss_vs_samples",
    "plot_sweep",
    "sweep_figures",
    "training_curves",
]
