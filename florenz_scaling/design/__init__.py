"""Adaptive design: which runs to buy next, and whether a design can identify its law at all.

Between ``fit`` and ``plan``: it reads fits (and the points they were fitted to) and writes plans. ``acquire``
is the one criterion of which run to buy next (the expected drop of the target's predictive variance, the
fit's competing modes included, per cost^0.4), scored around the fast least-squares refits of ``lsq``
(``formula`` gives chinchilla a formula form for them; ``poolfits`` caches and warm-starts them): replay's
``adaptive`` (both modes), ``propose`` and ``run --adaptive`` use it. ``model`` linearises a fitted law
(Fisher information, the delta-method variance of a target) and ``rank`` scores by it; ``ensemble`` scores by
the leave-one-out refits' spread (the OLS laws' criterion); ``pool`` builds the candidates; ``check`` warns
when a design cannot identify a law; ``replay`` replays the loop on finished runs (``budget``: ScaleBench's
protocol, ``replay --budgets``); ``adaptive`` is the loop of ``run --adaptive``; ``propose`` (with
``propose_adaptive``) is the ``propose`` command's work.
"""

from florenz_scaling.design.check import Finding, check_design, check_plan, condition_number
from florenz_scaling.design.ensemble import ensemble_score, jackknife_covariance, loo_predictions
from florenz_scaling.design.model import DesignError, LinearModel, Target, linearise, parse_target
from florenz_scaling.design.pool import Candidate, plan_runs, read_pool, sweep_pool, unmeasured
from florenz_scaling.design.rank import Scored, d_optimal, greedy, score, target_variance

__all__ = [
    "Candidate",
    "DesignError",
    "Finding",
    "LinearModel",
    "Scored",
    "Target",
    "check_design",
    "check_plan",
    "condition_number",
    "d_optimal",
    "ensemble_score",
    "greedy",
    "jackknife_covariance",
    "linearise",
    "loo_predictions",
    "parse_target",
    "plan_runs",
    "read_pool",
    "score",
    "sweep_pool",
    "target_variance",
    "unmeasured",
]
