"""Rank candidates by the expected reduction of the spread of leave-one-out refits at the targets, per cost.

Why not only the linearised variance (``design.rank``). The delta-method variance σ²·gᵀ(JᵀJ)⁻¹g assumes the
law is right: it sees the noise of the runs, not the misfit of the form. A Chinchilla law fitted on a few
small runs can have residuals of 0.3% and still extrapolate 10% wrong, because the runs that would expose
the misfit (the ones nearest the target) have not been bought. The leave-one-out (jackknife) refits see it:
when one run moves the extrapolation, the law is being held up by that run, whether the cause is noise or a
wrong form; once the design pins the target, dropping any one run leaves the prediction where it is.

The ensemble. Refit the law without each measured run i; each refit predicts the response r (log loss) at
every target and every candidate. Their jackknife covariance, (n−1)/n · Σ_i (r_i − r̄)(r_i − r̄)ᵀ, estimates
the joint uncertainty of the predictions, misfit included. A candidate x reduces the spread at target t, in
the linear (Kalman) update of that joint Gaussian given a measurement of x with noise σ², to
    Var'(t) = Var(t) − Cov(t, x)² / (Var(x) + σ²),
the same rank-1 update as the linearised model's with the jackknife covariance in place of the Fisher one
(for OLS on a linear law the jackknife covariance is the sandwich estimate, and the two agree under a true
law). Several targets add their variances; in log space each is already relative (Var(ln L) ≈ Var(L)/L²).
The refits cost n non-linear fits per decision and no imagined losses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from florenz_scaling.design.rank import Scored

MIN_MEMBERS = 3  # fewer leave-one-out refits than this give no covariance worth ranking by


def jackknife_covariance(R: np.ndarray) -> np.ndarray:
    """The jackknife covariance of the columns of ``R`` (one row per leave-one-out refit)."""
    R = np.asarray(R, dtype=float)
    n = len(R)
    D = R - R.mean(axis=0)
    return (n - 1) / n * (D.T @ D)


def ensemble_score(
    R_targets: np.ndarray, R_cands: np.ndarray, costs: Sequence[float], sigma2: float
) -> list[Scored]:
    """Score candidates from refit predictions: ``R_targets`` (members, targets), ``R_cands`` (members,
    candidates), both in the response space; ``sigma2`` is a new run's noise variance there."""
    T = np.asarray(R_targets, dtype=float)
    X = np.asarray(R_cands, dtype=float)
    S = jackknife_covariance(np.hstack([T, X]))
    t = T.shape[1]
    cross = S[:t, t:]  # Cov(target, candidate)
    before = float(np.trace(S[:t, :t]))
    after = before - (cross**2).sum(axis=0) / (np.diag(S)[t:] + sigma2)
    return [
        Scored(i, float(c), before, float(max(a, 0.0)))
        for i, (c, a) in enumerate(zip(costs, after, strict=True))
    ]


def loo_predictions(
    refit: Callable[[list[int]], Any],
    measured: Sequence[int],
    predict: Callable[[Any, np.ndarray], np.ndarray],
    X: np.ndarray,
) -> np.ndarray:
    """One row per leave-one-out refit that succeeded: ``predict(fit, X)`` (the response at the rows of X).

    ``refit(indices)`` fits the law to those measured runs (None when it cannot); a refit whose predictions
    are not finite is dropped, as a fit that failed.
    """
    rows = []
    for i in measured:
        res = refit([j for j in measured if j != i])
        if res is None:
            continue
        with np.errstate(all="ignore"):
            r = np.asarray(predict(res, X), dtype=float)
        if np.all(np.isfinite(r)):
            rows.append(r)
    return np.array(rows).reshape(len(rows), len(X))


def ensemble_greedy(
    R_targets: np.ndarray,
    R_cands: np.ndarray,
    costs: Sequence[float],
    sigma2: float,
    *,
    k: int | None = None,
    budget: float | None = None,
) -> list[Scored]:
    """Choose up to ``k`` candidates (total cost at most ``budget``) one at a time by gain per cost.

    After each pick the joint covariance of targets and candidates is conditioned on that run's measurement
    (the same Gaussian update), so a batch does not buy the same information twice.
    """
    T = np.asarray(R_targets, dtype=float)
    t = T.shape[1]
    S = jackknife_covariance(np.hstack([T, np.asarray(R_cands, dtype=float)]))
    costs = np.asarray(costs, dtype=float)
    left = list(range(len(costs)))
    spent, picked = 0.0, []
    while left and (k is None or len(picked) < k):
        ok = [i for i in left if budget is None or spent + costs[i] <= budget * (1 + 1e-12)]
        if not ok:
            break
        before = float(np.trace(S[:t, :t]))
        cols = np.array(ok) + t
        after = before - (S[:t, cols] ** 2).sum(axis=0) / (S[cols, cols] + sigma2)
        gain = (before - after) / np.maximum(costs[ok], 1e-300)
        j = int(np.argmax(gain))
        if not before - after[j] > 0:
            break
        i = ok[j]
        picked.append(Scored(i, float(costs[i]), before, float(max(after[j], 0.0))))
        c = i + t
        S = S - np.outer(S[:, c], S[c, :]) / (S[c, c] + sigma2)
        spent += costs[i]
        left.remove(i)
    return picked
