"""The paper's log-linear laws (the `compute` and `size-data` laws), fitted by OLS in log10 space.

Eq. 1 (``compute``):   log10 L = α0 + α1·log10 C, on the Pareto-frontier points only (paper, Fig. 3).
Eq. 3 (``size-data``): log10 L = β0 + β1·log10 P + β2·log10 S, on all runs (P raw parameters, S raw samples).
Both report Student-t 95% CIs, two-sided p-values, R², and keep the coefficient covariance and residual
variance so ``FitResult.predict`` can give confidence and prediction bands (as statsmodels does).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from florenz_scaling.fit.result import FitResult


def pareto_frontier(C: Any, L: Any) -> np.ndarray:
    """Boolean mask of the "lowest loss so far as C grows" staircase.

    Point i is on the frontier iff its loss is strictly lower than that of every other point with smaller or
    equal compute. Exact duplicates (same C and loss, e.g. a run drawn twice by the bootstrap) count as one
    point, so they are on the frontier together or not at all.
    """
    C = np.asarray(C, dtype=float).ravel()
    L = np.asarray(L, dtype=float).ravel()
    if C.shape != L.shape:
        raise ValueError("C and L must have the same length")
    out = np.zeros(len(C), dtype=bool)
    order = np.lexsort((L, C))  # by C, then by loss within equal C
    best_before = np.inf  # lowest loss among points with strictly smaller C
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and C[order[j]] == C[order[i]]:
            j += 1
        block = order[i:j]  # equal compute, sorted by loss
        lmin = L[block[0]]
        ties = block[L[block] == lmin]
        distinct_min = np.all(L[block[len(ties) :]] > lmin)
        if lmin < best_before and distinct_min:
            out[ties] = True
        best_before = min(best_before, lmin)
        i = j
    return out


def ols(y: np.ndarray, design: np.ndarray, names: tuple[str, ...], level: float = 0.95) -> dict[str, Any]:
    """OLS with classical (homoscedastic) standard errors, t-based CIs and two-sided p-values."""
    from scipy import stats

    n, k = design.shape
    if n < k:
        raise ValueError(f"{n} points cannot determine {k} coefficients")
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    df = n - k
    rss = float(resid @ resid)
    tss = float(((y - y.mean()) ** 2).sum())
    out: dict[str, Any] = {
        "coef": dict(zip(names, coef.tolist(), strict=True)),
        "df": df,
        "r2": 1.0 - rss / tss if tss > 0 else float("nan"),
        "rss": rss,
        "condition_number": float(np.linalg.cond(design)),
    }
    if df > 0:
        sigma2 = rss / df
        cov = sigma2 * np.linalg.pinv(design.T @ design)
        se = np.sqrt(np.diag(cov))
        q = stats.t.ppf(0.5 + level / 2.0, df)
        with np.errstate(divide="ignore", invalid="ignore"):
            tval = coef / se
        pval = 2.0 * stats.t.sf(np.abs(tval), df)
        out.update(
            sigma2=sigma2,
            cov=cov.tolist(),
            stderr=dict(zip(names, se.tolist(), strict=True)),
            tvalues=dict(zip(names, tval.tolist(), strict=True)),
            pvalues=dict(zip(names, pval.tolist(), strict=True)),
            ci={nm: [float(c - q * s), float(c + q * s)] for nm, c, s in zip(names, coef, se, strict=True)},
            adj_r2=1.0 - (1.0 - out["r2"]) * (n - 1) / df if np.isfinite(out["r2"]) else float("nan"),
        )
    return out


def _result(
    law: str, fit: dict[str, Any], used: np.ndarray, extras: dict[str, Any], warnings: list[str] | None = None
) -> FitResult:
    """The typed result of an ``ols`` fit; the remaining OLS diagnostics go to ``solver``."""
    fit = dict(fit)
    df = fit.pop("df")
    status = "converged" if df > 0 else "exact fit: no residual degrees of freedom, so no intervals"
    warnings = list(warnings or [])
    if 0 < df < 3:
        warnings.append(f"only {df} residual degrees of freedom: wide CIs")
    stats = {k: fit.pop(k, None) for k in ("coef", "ci", "cov", "sigma2", "stderr", "pvalues", "r2")}
    solver = {**fit, "objective_kind": "residual sum of squares of log10 L"}
    return FitResult(
        law=law,
        params=stats["coef"],
        ci=stats["ci"] or {},
        objective=fit["rss"],
        status=status,
        n_points=int(used.sum()),
        used=used.tolist(),
        method="ols",
        covariance=stats["cov"],
        dof=df,
        residual_variance=stats["sigma2"],
        stderr=stats["stderr"] or {},
        pvalues=stats["pvalues"] or {},
        r2=stats["r2"],
        warnings=warnings,
        solver=solver,
        extras={"space": "log10", **extras},
    )


def fit_compute(C: Any, L: Any, *, frontier_only: bool = True, level: float = 0.95) -> FitResult:
    """Paper Eq. 1: OLS of log10 L on log10 C over the Pareto-frontier points (all points if not
    ``frontier_only``). ``used`` marks the points fitted; ``n_points`` counts them."""
    C = np.asarray(C, dtype=float).ravel()
    L = np.asarray(L, dtype=float).ravel()
    if np.any(C <= 0) or np.any(L <= 0):
        raise ValueError("C and L must be positive")
    used = pareto_frontier(C, L) if frontier_only else np.ones(len(C), dtype=bool)
    if used.sum() < 2:
        which = "Pareto-frontier " if frontier_only else ""
        raise ValueError(f"need at least 2 {which}points, got {used.sum()}")
    design = np.column_stack([np.ones(used.sum()), np.log10(C[used])])
    fit = ols(np.log10(L[used]), design, ("alpha0", "alpha1"), level)
    extras = {
        "points": "pareto-frontier" if frontier_only else "all",
        "frontier_indices": np.flatnonzero(used).tolist(),
        "n_input": len(C),
        "compute_units": "as given (Florenz: GMACs, C = S·F·(1 + P_t/P))",
    }
    return _result("compute", fit, used, extras)


def fit_size_data(P: Any, S: Any, L: Any, *, level: float = 0.95) -> FitResult:
    """Paper Eq. 3: OLS of log10 L on log10 P (raw parameters) and log10 S (raw seen samples), all points."""
    P, S, L = (np.asarray(v, dtype=float).ravel() for v in (P, S, L))
    if np.any(P <= 0) or np.any(S <= 0) or np.any(L <= 0):
        raise ValueError("P, S and L must be positive")
    design = np.column_stack([np.ones(len(L)), np.log10(P), np.log10(S)])
    fit = ols(np.log10(L), design, ("beta0", "beta1", "beta2"), level)
    extras = {
        "points": "all",
        "units": "P raw parameters, S raw seen samples",
    }
    warnings = []
    if fit["condition_number"] > 1e6 or np.unique(np.log10(P)).size < 2 or np.unique(np.log10(S)).size < 2:
        warnings.append("ill-conditioned: P and S barely vary independently")
    return _result("size-data", fit, np.ones(len(L), dtype=bool), extras, warnings)
