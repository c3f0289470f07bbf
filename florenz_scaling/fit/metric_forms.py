"""The two forms a generation metric is fitted with (see ``fit.metrics``): the direct power law on −ln Q and
the loss → metric sigmoid of the two-stage map."""

from __future__ import annotations

from typing import Any

import numpy as np

from florenz_scaling.fit.laws import ols

MIN_SIGMOID_POINTS = 5  # four parameters and at least one residual degree of freedom


def _clip(value: np.ndarray, n: np.ndarray, scale: float) -> tuple[np.ndarray, int]:
    """Q clipped into (0, 1) by half a sample, and how many points were clipped."""
    q = np.asarray(value, dtype=float) / scale
    eps = 0.5 / np.maximum(np.asarray(n, dtype=float), 1.0)
    clipped = np.clip(q, eps, 1.0 - eps)
    return clipped, int(np.sum(clipped != q))


def fit_direct(x: Any, q: Any) -> dict[str, Any]:
    """−ln Q = A·x^(−α) by OLS of log10(−ln Q) on log10 x; Q must lie in (0, 1). Parameters ``log10_A`` and
    ``alpha`` (α > 0: the metric rises with x), with Student-t 95% intervals where there are residual dof."""
    x, q = np.asarray(x, dtype=float), np.asarray(q, dtype=float)
    if len(x) < 2 or np.unique(x).size < 2:
        raise ValueError(f"need points at 2 or more distinct x, got {np.unique(x).size}")
    fit = ols(np.log10(-np.log(q)), np.column_stack([np.ones(len(x)), np.log10(x)]), ("a0", "a1"))
    ci = fit.get("ci", {})
    return {
        "form": "-ln(Q) = A * x^(-alpha)",
        "params": {"log10_A": fit["coef"]["a0"], "alpha": -fit["coef"]["a1"]},
        "ci": {"log10_A": ci["a0"], "alpha": [-ci["a1"][1], -ci["a1"][0]]} if ci else {},
        "dof": fit["df"],
        "r2": fit["r2"],
        "n_points": len(x),
        "status": "converged" if fit["df"] > 0 else "exact fit: no residual degrees of freedom",
    }


def direct_q(params: dict[str, float], x: Any) -> np.ndarray:
    """Q of the direct form at x."""
    return np.exp(-(10.0 ** params["log10_A"]) * np.asarray(x, dtype=float) ** (-params["alpha"]))


def sigmoid_q(params: dict[str, float], loss: Any) -> np.ndarray:
    """Q of the loss → metric sigmoid at held-out loss ``loss`` (falls as loss rises), clipped to [0, 1]."""
    z = np.clip(params["k"] * (np.asarray(loss, dtype=float) - params["L0"]), -50.0, 50.0)
    return np.clip(params["lo"] + params["span"] / (1.0 + np.exp(z)), 0.0, 1.0)


def fit_sigmoid(loss: Any, q: Any) -> dict[str, Any]:
    """Q = lo + span / (1 + exp(k·(L − L0))) by bounded least squares from a small grid of starts (the
    objective has flat regions: a single start often stops on a plateau). lo, span ∈ [0, 1], k > 0."""
    from scipy.optimize import least_squares

    L, q = np.asarray(loss, dtype=float), np.asarray(q, dtype=float)
    if len(L) < MIN_SIGMOID_POINTS:
        raise ValueError(f"need {MIN_SIGMOID_POINTS} points for the sigmoid's 4 parameters, got {len(L)}")
    width = max(float(np.ptp(L)), 1e-3)
    lower = [0.0, 0.0, 1e-3 / width, float(L.min()) - 2 * width]
    upper = [1.0, 1.0, 1e3 / width, float(L.max()) + 2 * width]

    def parts(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sig = 1.0 / (1.0 + np.exp(np.clip(p[2] * (L - p[3]), -50.0, 50.0)))
        return sig, p[0] + p[1] * sig - q

    def jac(p: np.ndarray) -> np.ndarray:  # analytic: the finite-difference Jacobian dominated the cost
        sig, _ = parts(p)
        slope = -p[1] * sig * (1.0 - sig)
        return np.column_stack([np.ones_like(L), sig, slope * (L - p[3]), -slope * p[2]])

    # Start from the best cell of a (k, L0) grid, with lo and span solved linearly in each cell (variable
    # projection): one polish from there is as good as many random starts, and much cheaper.
    ks = np.geomspace(1.0, 64.0, 8) / width
    L0s = np.linspace(L.min() - 0.5 * width, L.max() + 0.5 * width, 13)
    sig = 1.0 / (1.0 + np.exp(np.clip(ks[:, None, None] * (L - L0s[None, :, None]), -50.0, 50.0)))
    s_mean, q_mean = sig.mean(axis=-1), q.mean()
    var = ((sig - s_mean[..., None]) ** 2).sum(axis=-1)
    span = np.clip(((sig - s_mean[..., None]) * (q - q_mean)).sum(axis=-1) / np.maximum(var, 1e-12), 0.0, 1.0)
    lo = np.clip(q_mean - span * s_mean, 0.0, 1.0)
    rss = ((lo[..., None] + span[..., None] * sig - q) ** 2).sum(axis=-1)
    i, j = np.unravel_index(int(np.argmin(rss)), rss.shape)
    start = np.clip([lo[i, j], max(span[i, j], 1e-3), ks[i], L0s[j]], lower, upper)
    best = least_squares(
        lambda p: parts(p)[1],
        start,
        jac=jac,
        bounds=(lower, upper),
        method="trf",
        x_scale="jac",
        max_nfev=500,
    )
    names = ("lo", "span", "k", "L0")
    at = {
        n: ("lower" if v <= lo + 1e-9 else "upper" if v >= hi - 1e-9 else None)
        for n, v, lo, hi in zip(names, best.x, lower, upper, strict=True)
    }
    return {
        "form": "Q = lo + span / (1 + exp(k * (L - L0)))",
        "params": dict(zip(names, map(float, best.x), strict=True)),
        "rss": float(2 * best.cost),
        "n_points": len(L),
        "at_bound": at,
        "status": "converged" if best.success else f"not converged: {best.message}",
    }
