"""A verdict per fit — reliable / weak / not identifiable — from measured diagnostics, with reasons in words.

The diagnostics and their thresholds (each a number the reader can check in ``Verdict.diagnostics``):

- points per parameter: fewer than 2 is weak; no residual degrees of freedom is not identifiable.
- condition number of the design, centred and column-scaled so that it measures how much the parameters
  trade off, not their units: for OLS the regressors (from the coefficient covariance), for the non-linear
  laws the Jacobian of log L̂ at the optimum. Above 100 weak (Belsley's "strong dependence"), above 1e4 not
  identifiable. The Epoch Chinchilla fit measures 33.
- parameters at a bound (E driven to 0, an exponent at its limit): not identifiable, since the data then do
  not determine that parameter and its interval is one-sided by construction.
- interval width relative to the estimate: exponents (hi − lo)/|estimate| above 1 weak, above 10 not
  identifiable; multiplicative parameters (A, B, E) in decades, log10(hi/lo), above 1 weak, above 3 (or an
  interval reaching 0) not identifiable; intercepts (α0, β0) are locations and are not judged. A non-linear
  fit without intervals is weak.
- rollout error (fit on the smaller sizes, predict the largest): mean |relative error| above 10% is weak.
- an optimiser that did not converge: not identifiable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from florenz_scaling.fit.laws import get_law
from florenz_scaling.fit.result import VERDICTS, FitResult, Verdict

MIN_POINTS_PER_PARAM = 2.0
COND_WEAK, COND_BAD = 100.0, 1e4
REL_WEAK, REL_BAD = 1.0, 10.0
DECADES_WEAK, DECADES_BAD = 1.0, 3.0
ROLLOUT_WEAK = 0.10


def design_condition(fit: FitResult, inputs: Sequence[Any] | None = None) -> float | None:
    """Condition number of the fit's centred, column-scaled design (OLS) or Jacobian (non-linear laws).

    OLS: from the covariance of the slopes (their correlation matrix is the inverse of the regressors'), so
    no data are needed. Non-linear: needs the ``inputs`` the fit used ((N, D) or (C,)); None without them.
    """
    if fit.method == "ols":
        if fit.covariance is None:
            return None
        cov = np.asarray(fit.covariance, dtype=float)[1:, 1:]  # the intercept is a location, not judged
        if cov.size == 0 or not np.all(np.isfinite(cov)):
            return None
        sd = np.sqrt(np.diag(cov))
        corr = cov / np.outer(sd, sd)
        return float(math.sqrt(np.linalg.cond(corr)))  # cond(design) = sqrt(cond(Gram))
    if inputs is None:
        return None
    return get_law(fit.law).condition(fit.params, [np.asarray(x, dtype=float) for x in inputs])


def _interval_checks(fit: FitResult, worst: list[int], reasons: list[str]) -> dict[str, float]:
    """Relative widths of the intervals; appends reasons and raises ``worst[0]`` as needed."""
    widths: dict[str, float] = {}
    law = get_law(fit.law)
    roles = {p.name: p.role for p in law.params}
    for name, value in fit.params.items():
        ci = fit.ci.get(name)
        if roles.get(name) == "exponent" and ci:
            lo, hi = ci
            rel = (hi - lo) / abs(value) if value != 0 else math.inf
            widths[name] = rel
            level = 2 if not math.isfinite(rel) or rel > REL_BAD else 1 if rel > REL_WEAK else 0
            if level:
                reasons.append(f"{name} interval [{lo:.3g}, {hi:.3g}] is {rel:.3g}× its estimate {value:.3g}")
        elif roles.get(name) == "scale" and ci:
            lo, hi = ci
            dec = math.log10(hi / lo) if lo > 0 and hi > 0 else math.inf
            widths[name] = dec
            level = 2 if not math.isfinite(dec) or dec > DECADES_BAD else 1 if dec > DECADES_WEAK else 0
            if level:
                span = "reaches 0" if not math.isfinite(dec) else f"spans {dec:.3g} decades"
                reasons.append(f"{name} interval [{lo:.3g}, {hi:.3g}] {span}")
        else:
            continue
        worst[0] = max(worst[0], level)
    return widths


def assess(fit: FitResult, inputs: Sequence[Any] | None = None) -> Verdict:
    """The verdict on one fit from its diagnostics (see the module docstring for the thresholds).

    ``inputs``: the fit's input arrays, for the condition number of a non-linear fit's Jacobian.
    """
    worst = [0]
    reasons: list[str] = []

    def flag(level: int, why: str) -> None:
        worst[0] = max(worst[0], level)
        reasons.append(why)

    k = max(len(fit.params), 1)
    ppp = fit.n_points / k
    diag: dict[str, Any] = {"n_points": fit.n_points, "n_params": k, "points_per_param": ppp}
    if fit.status and fit.status != "converged":
        flag(2, f"optimiser: {fit.status}")
    dof = fit.dof if fit.dof is not None else fit.n_points - k
    if dof <= 0:
        flag(2, f"{fit.n_points} points for {k} parameters: no residual degrees of freedom")
    elif ppp < MIN_POINTS_PER_PARAM:
        flag(1, f"only {ppp:.2g} points per parameter")
    cond = design_condition(fit, inputs)
    diag["design_condition"] = cond
    if cond is not None and (not math.isfinite(cond) or cond > COND_WEAK):
        flag(
            2 if not math.isfinite(cond) or cond > COND_BAD else 1,
            f"condition number of the design {cond:.3g}: parameters trade off",
        )
    bounds = sorted(name for name, side in fit.at_bound.items() if side)
    diag["at_bound"] = bounds
    for name in bounds:
        flag(2, f"{name} at its {fit.at_bound[name]} bound: not determined by the data")
    diag["interval_width"] = _interval_checks(fit, worst, reasons)
    if fit.method != "ols" and not fit.ci:
        flag(1, "no intervals (bootstrap not run)")
    err = (fit.rollout or {}).get("mean_abs_rel_error")
    diag["rollout_error"] = err
    if err is not None and err > ROLLOUT_WEAK:
        flag(1, f"rollout to the largest size is off by {100 * err:.3g}% on average")
    return Verdict(level=VERDICTS[worst[0]], reasons=reasons, diagnostics=diag)


def verdict_of(fit: FitResult) -> Verdict:
    """The stored verdict, or (files written before verdicts) one assessed now from the stored fields."""
    return fit.verdict if fit.verdict is not None else assess(fit)


def fit_inputs(law: str, points: Any) -> tuple[np.ndarray, ...]:
    """The input arrays a law was fitted on, from a points table (for ``assess``); the OLS laws need none
    (their condition number comes from the coefficient covariance)."""
    found = get_law(law)
    return () if found.linear_in_logs else tuple(found.columns(points).values())
