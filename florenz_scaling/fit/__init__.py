"""Scaling-law fits: the paper's OLS laws, the Chinchilla and saturating forms, bootstrap and rollout.

numpy, scipy and pandas only. Every fit returns a ``FitResult`` that round-trips through JSON; ``fit_sweep``
writes them to DIR/fits/ and ``load_fits`` reads them back. ``load_paper`` / ``paper_coefficients`` give the
paper's Tables 2–3 to compare against. Laws are objects in one registry (``fit.laws``: ``get_law``,
``load_laws`` for laws written in YAML); ``predict_targets`` gives predictions with bootstrap intervals.
Across groups: ``fit_joint`` (shared exponents, with the shared-vs-separate test) and ``fit_gap`` (the
gap law); ``assess`` gives each fit its verdict and ``sweep_headline`` the answer a report opens with.
Generation metrics: ``fit_metrics`` (direct power law on −ln Q and the two-stage loss → sigmoid map, with
rollouts), ``load_metric_fits``.
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
from florenz_scaling.fit.gap import GapFit, fit_gap
from florenz_scaling.fit.headline import build_headline, headline_lines, split_emergence, sweep_headline
from florenz_scaling.fit.io import (
    fit_points,
    fit_sweep,
    load_fits,
    load_gaps,
    load_joint,
    load_metric_fits,
    load_points,
    read_targets,
    select,
    sweep_points,
    write_comparisons,
)
from florenz_scaling.fit.isoflop import BudgetProfile, Exponent, IsoFLOP
from florenz_scaling.fit.isoflop_io import analyse_isoflop, load_isoflop, write_isoflop
from florenz_scaling.fit.joint import JointFit
from florenz_scaling.fit.joint_expr import fit_joint
from florenz_scaling.fit.laws import (
    Law,
    LawError,
    Param,
    fit_compute,
    fit_size_data,
    get_law,
    is_law,
    law_names,
    load_laws,
    ols,
    pareto_frontier,
)
from florenz_scaling.fit.metrics import MetricFit, fit_metrics
from florenz_scaling.fit.predictions import predict_targets
from florenz_scaling.fit.reference import PAPER_FILE, load_paper, paper_coefficients, paper_predict
from florenz_scaling.fit.result import VERDICTS, BootstrapSummary, FitResult, Verdict
from florenz_scaling.fit.validate import rollout
from florenz_scaling.fit.verdict import assess, verdict_of
from florenz_scaling.spec import LAWS

__all__ = [
    "BudgetProfile",
    "Exponent",
    "IsoFLOP",
    "analyse_isoflop",
    "load_isoflop",
    "write_isoflop",
    "LAWS",
    "VERDICTS",
    "GapFit",
    "JointFit",
    "MetricFit",
    "fit_metrics",
    "load_metric_fits",
    "Verdict",
    "assess",
    "build_headline",
    "fit_gap",
    "fit_joint",
    "headline_lines",
    "load_gaps",
    "load_joint",
    "split_emergence",
    "sweep_headline",
    "verdict_of",
    "write_comparisons",
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
    "Law",
    "LawError",
    "Param",
    "get_law",
    "is_law",
    "law_names",
    "load_laws",
    "predict_targets",
    "read_targets",
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
