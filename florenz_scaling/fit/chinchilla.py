"""Non-linear laws: Chinchilla L(N, D) = E + A/N^α + B/D^β and saturating compute L(C) = E + A·C^−α.

Robust recipe (Hoffmann et al. 2022; Besiroglu et al. 2024): log-sum-exp parameters, Huber δ = 1e-3 on log
residuals *summed* over points, L-BFGS-B with tight tolerances from every point of an initialisation grid,
best objective kept; ``objective="mse-raw"`` fits least squares on the raw loss instead (pitfall 9: the
objective changes the answer, so it is an explicit, recorded option). A variable-projection alternative
searches only the exponents and solves the linear coefficients by non-negative least squares, which stays
well posed with few runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from florenz_scaling.fit._blas import single_threaded_blas
from florenz_scaling.fit._optim import OBJECTIVES, LSEProblem, multistart
from florenz_scaling.fit.result import FitResult

# log-space bounds for the LSE parameters; they also keep exp() in range (see LSEProblem.value_and_grad).
COEF_BOUNDS = (-20.0, 60.0)
E_LOWER = -20.0
EXP_BOUNDS = (0.0, 5.0)
# E below this fraction of the smallest loss is reported as at its lower bound (driven to zero).
E_ZERO = 1e-3
# With fewer points than this the 5-parameter Chinchilla fit is ill-posed; fit_chinchilla(method="auto")
# and fit_sweep then use variable projection instead.
FEW_POINTS = 20
FLOP_NOTE = (
    "compute_optimal assumes C = 6·N·D training FLOPs (Hoffmann et al.); a Florenz sweep's C is "
    "measured forward GMACs × (1 + P_t/P) (paper Eq. 2): N*, D* are only meaningful for C in "
    "6·N·D FLOPs."
)


def hoffmann_grid(m: int = 2) -> np.ndarray:
    """Hoffmann's initialisation grid: a, b ∈ {0, 5, …, 25}, e ∈ {−1, −0.5, …, 1}, α, β ∈ {0, 0.5, …, 2}.

    For m = 2 this is the 4,500-start grid (rows ordered a, b, e, α, β); for m = 1, 150 starts (a, e, α).
    """
    coef = np.arange(0.0, 30.0, 5.0)
    e = np.arange(-1.0, 1.01, 0.5)
    ex = np.arange(0.0, 2.01, 0.5)
    rows = itertools.product(*([coef] * m), e, *([ex] * m))
    return np.array(list(rows), dtype=float)


def small_grid(m: int = 2) -> np.ndarray:
    """A coarse 3^m·2·3^m-point grid over the same box (162 starts for Chinchilla), for quick fits."""
    coef = np.array([0.0, 10.0, 20.0])
    e = np.array([-0.5, 0.5])
    ex = np.array([0.25, 0.75, 1.5])
    return np.array(list(itertools.product(*([coef] * m), e, *([ex] * m))), dtype=float)


def lse_bounds(m: int, min_loss: float) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([COEF_BOUNDS[0]] * m + [E_LOWER] + [EXP_BOUNDS[0]] * m)
    # E <= min observed loss: the irreducible loss cannot exceed any measured loss.
    hi = np.array([COEF_BOUNDS[1]] * m + [np.log(min_loss)] + [EXP_BOUNDS[1]] * m)
    return lo, hi


def _check_inputs(arrays: Sequence[np.ndarray], L: np.ndarray, n_coef: int) -> None:
    if len(L) < n_coef:
        # The optimiser would "converge" onto its bounds and look like a result; refuse, as OLS does.
        raise ValueError(f"{len(L)} points cannot determine {n_coef} coefficients")
    for a in (*arrays, L):
        if a.shape != L.shape or a.ndim != 1:
            raise ValueError("inputs must be 1-D arrays of equal length")
        if not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise ValueError("inputs and losses must be finite and positive")
    if any(np.any(a < 1) for a in arrays):
        raise ValueError("N, D and C must be counts >= 1 (raw parameters, samples/tokens, FLOPs or GMACs)")


def _lse_fit(
    law: str,
    names: tuple[str, ...],
    inputs: Sequence[np.ndarray],
    L: np.ndarray,
    *,
    delta: float,
    reduction: str,
    objective: str,
    init_grid: np.ndarray | None,
    n_polish: int,
    meta: dict[str, Any],
    screen_iter: tuple[int, int] | None = (10, 200),
) -> FitResult:
    """Shared LSE/Huber fit; ``names`` are the public names of (coefs…, E, exponents…).

    ``meta`` = {"extras": law-specific notes, "solver": more diagnostics (e.g. why this method)}.
    """
    m = len(inputs)
    X = np.column_stack([np.log(a) for a in inputs])
    problem = LSEProblem(X, np.log(L), delta=delta, reduction=reduction, objective=objective)
    lo, hi = lse_bounds(m, float(L.min()))
    starts = hoffmann_grid(m) if init_grid is None else np.atleast_2d(np.asarray(init_grid, dtype=float))
    out = multistart(problem, starts, lo, hi, n_polish=n_polish, screen_iter=screen_iter)
    res = out["res"]
    theta = res.x
    params = {}
    for j in range(m):
        params[names[j]] = float(np.exp(theta[j]))
        params[names[m + 1 + j]] = float(theta[m + 1 + j])
    params["E"] = float(np.exp(theta[m]))
    tol = 1e-6 * np.maximum(hi - lo, 1.0)
    at_lo = theta <= lo + tol
    at_hi = theta >= hi - tol
    at_bound = {names[i]: ("lower" if at_lo[i] else "upper" if at_hi[i] else None) for i in range(len(theta))}
    if params["E"] < E_ZERO * L.min():  # E driven to 0 (few runs, pitfall 4): as good as at its lower bound
        at_bound["E"] = "lower"
    warnings = [f"{k} at its {v} bound" for k, v in at_bound.items() if v]
    cond = _hessian_condition(problem, theta)
    if cond is None or cond > 1e10:
        shown = "inf" if cond is None else f"{cond:.2g}"
        warnings.append(
            f"ill-conditioned: Hessian condition number {shown} (parameters trade off; "
            "prefer the bootstrap intervals)"
        )
    n_par = 2 * m + 1
    if len(L) < 4 * n_par:
        warnings.append(f"only {len(L)} points for {n_par} parameters: consider method='varpro'")
    solver = {
        "objective": objective,
        "objective_kind": (
            f"Huber(delta={delta}) of log residuals"
            if objective == "huber-log"
            else "squared error of the raw loss"
        )
        + f", {reduction} over points",
        "optimizer": "batched float32 L-BFGS screen, then scipy L-BFGS-B (ftol 1e-12, gtol 1e-10)",
        "optimizer_message": str(res.message),
        "optimizer_status": int(res.status),
        "n_starts": out["n_starts"],
        "n_polished": out["n_polished"],
        "local_optima": out["local_optima"],
        "theta": {(names[i] if i > m else "log_" + names[i]): float(theta[i]) for i in range(len(theta))},
        "grad_inf_norm": float(np.abs(res.jac).max()),
        "hessian_cond": cond,
        **meta.get("solver", {}),
    }
    # L-BFGS-B ending on an "ABNORMAL" line search at a tiny gradient has converged to machine precision.
    ok = res.status == 0 or (np.abs(res.jac).max() < 1e-6 * max(1.0, abs(res.fun)))
    status = "converged" if ok else f"not converged: {res.message}"
    return FitResult(
        law=law,
        params=params,
        objective=float(res.fun),
        status=status,
        n_points=len(L),
        used=[True] * len(L),
        method="lbfgs",
        nit=out["nit"],
        at_bound=at_bound,
        warnings=warnings,
        solver=solver,
        extras=dict(meta.get("extras", {})),
    )


def _hessian_condition(problem: LSEProblem, theta: np.ndarray) -> float | None:
    """Condition number of the finite-difference Hessian (from the analytic gradient) at the optimum."""
    p = len(theta)
    h = 1e-5
    H = np.empty((p, p))
    for i in range(p):
        e = np.zeros(p)
        e[i] = h
        H[i] = (problem.scalar(theta + e)[1] - problem.scalar(theta - e)[1]) / (2 * h)
    H = 0.5 * (H + H.T)
    c = float(np.linalg.cond(H))
    return c if np.isfinite(c) else None


def _varpro(
    law: str,
    names: tuple[str, ...],
    inputs: Sequence[np.ndarray],
    L: np.ndarray,
    delta: float,
    meta: dict[str, Any],
    grid_n: int | None = None,
    init: Sequence[float] | None = None,
    objective: str = "huber-log",
) -> FitResult:
    """Variable projection: minimise over exponents the relative SSE of a non-negative least-squares fit of
    L ≈ E + Σ_j A_j x_j^−α_j; relative residuals (rows divided by L) approximate the log-space fit, plain
    residuals (``objective="mse-raw"``) are least squares on the raw loss.

    The exponents are searched on a ``grid_n``-per-axis grid over [0.02, 2.5] (plus ``init`` if given), then
    refined by Nelder-Mead from the best grid point."""
    from scipy.optimize import minimize, nnls

    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}")
    m = len(inputs)
    logx = np.column_stack([np.log(a) for a in inputs])
    ref = logx.mean(axis=0)  # centre the inputs so the NNLS columns are O(1) and well conditioned
    zc = logx - ref

    scale = L if objective == "huber-log" else np.ones(len(L))

    def solve(alphas: np.ndarray) -> tuple[float, np.ndarray]:
        cols = [np.exp(-alphas[j] * zc[:, j]) for j in range(m)]
        M = np.column_stack([np.ones(len(L)), *cols]) / scale[:, None]
        coef, rnorm = nnls(M, L / scale)
        return float(rnorm**2), coef

    grid1 = np.linspace(0.02, 2.5, grid_n or (63 if m == 1 else 36))
    cands = [np.array(a) for a in itertools.product(grid1, repeat=m)]
    if init is not None:
        cands.append(np.clip(np.asarray(init, dtype=float), *EXP_BOUNDS))
    best = min(((solve(a)[0], a) for a in cands), key=lambda t: t[0])
    res = minimize(
        lambda a: solve(np.clip(a, *EXP_BOUNDS))[0],
        np.array(best[1]),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-16, "maxiter": 4000},
    )
    alphas = np.clip(res.x, *EXP_BOUNDS)
    sse, coef = solve(alphas)
    params = {"E": float(coef[0])}
    for j in range(m):
        params[names[j]] = float(coef[1 + j] * np.exp(alphas[j] * ref[j]))
        params[names[m + 1 + j]] = float(alphas[j])
    pred = params["E"] + sum(params[names[j]] * np.exp(-alphas[j] * logx[:, j]) for j in range(m))
    r = np.log(pred) - np.log(L)
    huber = float(np.sum(np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))))
    at_bound = {"E": "lower" if params["E"] < E_ZERO * L.min() else None}
    for j in range(m):
        at_bound[names[j]] = "lower" if coef[1 + j] <= 0 else None
        a = alphas[j]
        side = "lower" if a <= grid1[0] else "upper" if a >= EXP_BOUNDS[1] - 1e-9 else None
        at_bound[names[m + 1 + j]] = side
    warnings = [f"{k} at its {v} bound" for k, v in at_bound.items() if v]
    solver = {
        "objective": objective,
        "objective_kind": (
            "relative SSE sum((L_hat - L)/L)^2" if objective == "huber-log" else "SSE sum(L_hat - L)^2"
        )
        + " of the NNLS fit of the linear coefficients at the "
        "best exponents",
        "huber_objective": huber,
        "optimizer_message": str(res.message),
        **meta.get("solver", {}),
    }
    status = "converged" if res.success else f"not converged: {res.message}"
    return FitResult(
        law=law,
        params=params,
        objective=sse,
        status=status,
        n_points=len(L),
        used=[True] * len(L),
        method="varpro",
        nit=int(res.nit),
        at_bound=at_bound,
        warnings=warnings,
        solver=solver,
        extras=dict(meta.get("extras", {})),
    )


def fit_chinchilla(
    N: Any,
    D: Any,
    L: Any,
    *,
    method: str = "lbfgs",
    delta: float = 1e-3,
    reduction: str = "sum",
    objective: str = "huber-log",
    init_grid: np.ndarray | None = None,
    n_polish: int = 8,
    screen: bool = True,
    varpro_grid: int | None = None,
    varpro_init: Sequence[float] | None = None,
) -> FitResult:
    """Fit L(N, D) = E + A/N^α + B/D^β.

    ``method``: "lbfgs" (the robust LSE/Huber recipe from ``init_grid``, default Hoffmann's 4,500 starts),
    "varpro" (exponents searched, E, A, B by NNLS) or "auto" (varpro below ``FEW_POINTS`` points).
    ``reduction="mean"`` averages the Huber terms instead of summing them; it is kept as an explicit,
    recorded option (the averaged objective is what stops early in the known failure). ``objective``:
    "huber-log" (Huber on log residuals, the default) or "mse-raw" (least squares on the raw loss).
    ``screen=False`` polishes every row of ``init_grid`` directly (warm starts; see ``resample_fitter``).
    ``varpro_grid`` / ``varpro_init``: exponent grid size per axis and an extra (α, β) candidate for varpro.
    """
    N, D, L = (np.asarray(v, dtype=float).ravel() for v in (N, D, L))
    names = ("A", "B", "E", "alpha", "beta")
    _check_inputs((N, D), L, len(names))
    meta: dict[str, Any] = {"extras": {"flop_convention": FLOP_NOTE}, "solver": {}}
    if method == "auto":
        method = "varpro" if len(L) < FEW_POINTS else "lbfgs"
        meta["solver"]["method_reason"] = (
            f"auto: {len(L)} points ({'<' if method == 'varpro' else '>='} {FEW_POINTS})"
        )
    if method == "varpro":
        with single_threaded_blas():
            return _varpro("chinchilla", names, (N, D), L, delta, meta, varpro_grid, varpro_init, objective)
    if method != "lbfgs":
        raise ValueError("method must be 'lbfgs', 'varpro' or 'auto'")
    r = _lse_fit(
        "chinchilla",
        names,
        (N, D),
        L,
        delta=delta,
        reduction=reduction,
        objective=objective,
        init_grid=init_grid,
        n_polish=n_polish,
        meta=meta,
        screen_iter=(10, 200) if screen else None,
    )
    return r.replace(extras={**r.extras, "derived": derived_chinchilla(r.params)})


def fit_saturating_compute(
    C: Any,
    L: Any,
    *,
    method: str = "lbfgs",
    delta: float = 1e-3,
    reduction: str = "sum",
    objective: str = "huber-log",
    init_grid: np.ndarray | None = None,
    n_polish: int = 8,
    screen: bool = True,
    varpro_grid: int | None = None,
    varpro_init: Sequence[float] | None = None,
) -> FitResult:
    """Fit L(C) = E + A·C^−α with the same robust recipe (or ``method="varpro"``; see ``fit_chinchilla``)."""
    C, L = (np.asarray(v, dtype=float).ravel() for v in (C, L))
    names = ("A", "E", "alpha")
    _check_inputs((C,), L, len(names))
    meta: dict[str, Any] = {"extras": {}, "solver": {}}
    if method == "auto":
        method = "varpro" if len(L) < 4 * 3 else "lbfgs"
        meta["solver"]["method_reason"] = f"auto: {len(L)} points"
    if method == "varpro":
        with single_threaded_blas():
            return _varpro(
                "saturating-compute", names, (C,), L, delta, meta, varpro_grid, varpro_init, objective
            )
    if method != "lbfgs":
        raise ValueError("method must be 'lbfgs', 'varpro' or 'auto'")
    if init_grid is None:  # 3 parameters: a denser grid than Hoffmann's costs nothing
        init_grid = np.array(
            list(
                itertools.product(
                    np.arange(0.0, 30.1, 2.5), np.arange(-2.0, 1.01, 0.5), np.arange(0.0, 2.01, 0.25)
                )
            )
        )
    return _lse_fit(
        "saturating-compute",
        names,
        (C,),
        L,
        delta=delta,
        reduction=reduction,
        objective=objective,
        init_grid=init_grid,
        n_polish=n_polish,
        meta=meta,
        screen_iter=(10, 200) if screen else None,
    )


def compute_optimal(result: FitResult | dict[str, float], C: Any) -> dict[str, Any]:
    """Compute-optimal allocation from Chinchilla parameters at training FLOPs ``C`` (C = 6·N·D).

    G = (αA/(βB))^(1/(α+β)); N* = G·(C/6)^(β/(α+β)); D* = (C/6)^(α/(α+β))/G; L* = L(N*, D*).
    Returns arrays ``N_opt``, ``D_opt``, ``L_opt``, ``tokens_per_param`` and the scalars ``G``, ``a``
    (= β/(α+β), the exponent of N*), ``b`` (= α/(α+β)).
    """
    p = result.params if isinstance(result, FitResult) else result
    E, A, B, al, be = (p[k] for k in ("E", "A", "B", "alpha", "beta"))
    if not (A > 0 and B > 0 and al > 0 and be > 0):
        raise ValueError(
            f"no compute-optimal allocation: needs A, B, alpha, beta > 0 (got A={A:g}, B={B:g}, "
            f"alpha={al:g}, beta={be:g})"
        )
    C = np.asarray(C, dtype=float)
    G = (al * A / (be * B)) ** (1.0 / (al + be))
    a, b = be / (al + be), al / (al + be)
    n_opt = G * (C / 6.0) ** a
    d_opt = (C / 6.0) ** b / G
    l_opt = E + A / n_opt**al + B / d_opt**be
    return {
        "N_opt": n_opt,
        "D_opt": d_opt,
        "L_opt": l_opt,
        "tokens_per_param": d_opt / n_opt,
        "G": G,
        "a": a,
        "b": b,
        "convention": FLOP_NOTE,
    }


def derived_chinchilla(params: dict[str, float]) -> dict[str, float]:
    """Scalar derived quantities recorded with every Chinchilla fit."""
    al, be = params["alpha"], params["beta"]
    out = {"exponent_ratio_beta_over_alpha_plus_beta": be / (al + be)}
    if al > 0 and be > 0 and params["A"] > 0 and params["B"] > 0:
        out["G"] = float(compute_optimal(params, 1.0)["G"])
    return out
