"""Scaling-law fits: the paper's OLS laws, the Chinchilla and saturating forms, bootstrap and rollout.

numpy, scipy and pandas only. Every fit returns a ``FitResult`` that round-trips through JSON; ``fit_sweep``
writes them to DIR/fits/ and ``load_fits`` reads them back. ``load_paper`` / ``paper_coefficients`` give the
paper's Tables 2–3 to compare against.
"""

from florenz_scaling.fit._blas import single_threaded_blas
from florenz_scaling.fit._optim import LSEProblem, polish
from florenz_scaling.fit.bootstrap import bootstrap, fitter
from florenz_scaling.fit.chinchilla import (
    compute_optimal,
    fit_chinchilla,
    fit_saturating_compute,
    hoffmann_grid,
    lse_bounds,
    small_grid,
)
from florenz_scaling.fit.io import fit_points, fit_sweep, load_fits, load_points, select, sweep_points
from florenz_scaling.fit.laws import fit_compute, fit_size_data, ols, pareto_frontier
from florenz_scaling.fit.reference import PAPER_FILE, load_paper, paper_coefficients, paper_predict
from florenz_scaling.fit.result import LAW_INPUTS, LAW_PARAMS, LAWS, BootstrapSummary, FitResult
from florenz_scaling.fit.validate import rollout

__all__ = [
    "LAWS",
    "PAPER_FILE",
    "BootstrapSummary",
    "load_fits",
    "load_paper",
    "paper_coefficients",
    "paper_predict",
    "LSEProblem",
    "lse_bounds",
    "polish",
    "single_threaded_blas",
    "LAW_INPUTS",
    "LAW_PARAMS",
    "FitResult",
    "bootstrap",
    "compute_optimal",
    "fit_chinchilla",
    "fit_compute",
    "fit_points",
    "fit_saturating_compute",
    "fit_size_data",
    "fit_sweep",
    "fitter",
    "hoffmann_grid",
    "load_points",
    "ols",
    "pareto_frontier",
    "rollout",
    "select",
    "small_grid",
    "sweep_points",
]
