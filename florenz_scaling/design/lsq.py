"""Least-squares fits of a formula law on subsets of a pool: the many refits of a budgeted replay, fast.

Why not ``Law.fit``. A replay refits after every purchase (hundreds of times per repeat); ``Law.fit`` builds
a start grid of up to 3,000 rows and polishes eight candidates to L-BFGS-B's floor, about a second each. Here
one refit is: every start (random draws inside the law's bounds, plus the previous fit's distinct optima as
warm starts) runs through the batched projected L-BFGS of ``fit._optim`` in one numpy pass, then the best
few distinct points are polished with scipy's L-BFGS-B at ScaleBench's tolerances. The objective is the sum
of squared raw-loss residuals (what ScaleBench scores and fits) or, for a law fitted in log space (the
chinchilla recipe, ``design.formula``), Huber on log residuals: LM then runs on the squared log residuals
(the Gauss–Newton model of the Huber objective near zero) and L-BFGS-B polishes the Huber objective itself.
Parameters are the law's working ones (log of a log-scale parameter), with the law's exact Jacobian.

``Fits.optima`` keeps every polished optimum (working θ, SSR): the near-optimal ones are the "distinct good
fits" whose disagreement the adaptive criterion measures (``design.acquire``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from florenz_scaling.fit.laws.generic import BatchProblem, work_bounds

MAX_ITER = 100  # Levenberg–Marquardt iterations at most (most starts stop within 30)
N_POLISH = 2  # distinct LM optima polished with L-BFGS-B per refit
LBFGSB = {"ftol": 1e-15, "gtol": 1e-10, "maxiter": 500, "maxfun": 800}  # their tolerances; capped: see fit()
UNBOUNDED = 5.0  # random starts of a parameter with an infinite bound are drawn within ±this (working space)
# "rel-sse": Σ((L̂ − L)/L)², variable projection's objective in ``fit.chinchilla``; "lse-auto": the built-in
# recipe's method="auto", rel-sse below FEW_POINTS points and huber-log from there (``design.formula``).
OBJECTIVES = ("mse-raw", "huber-log", "rel-sse", "lse-auto")
FEW_POINTS = 20  # fit.chinchilla.FEW_POINTS


@dataclass
class Fits:
    """The polished optima of one refit, best first: working θ (k, p) and the sum of squared residuals."""

    theta: np.ndarray
    ssr: np.ndarray  # the objective (the raw-loss SSR for "mse-raw")
    n: int  # points fitted
    rss: np.ndarray | None = None  # the raw-loss SSR of each optimum (what the criteria's noise reads)

    def __post_init__(self) -> None:
        if self.rss is None:
            self.rss = self.ssr

    @property
    def best(self) -> np.ndarray:
        return self.theta[0]


class LawFitter:
    """One law on one pool: predictions, working-space Jacobians and multistart least-squares refits."""

    def __init__(
        self, law: object, X: dict[str, np.ndarray], y: np.ndarray, *, objective: str | None = None
    ) -> None:
        """``law``: a registry law with a formula form (``design.formula``); ``objective``: "mse-raw" or
        "huber-log" (default: the formula's own, e.g. huber-log for chinchilla, mse-raw for farseer)."""
        from florenz_scaling.design.formula import formula_of

        form = formula_of(law)
        if form is None:
            raise ValueError(
                f"law {getattr(law, 'name', law)!r} has no formula form; the fast refits take formula laws "
                "(data-constrained, farseer, chinchilla-tied, a YAML law), chinchilla and saturating-compute"
            )
        law = form.law
        self.law = law
        self.objective = objective or form.objective
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, not {self.objective!r}")
        self.X = {k: np.asarray(v, dtype=float) for k, v in X.items()}
        self.y = np.asarray(y, dtype=float)
        self.lo, self.hi = work_bounds(law)
        self.box_lo = np.where(np.isfinite(self.lo), self.lo, -UNBOUNDED)
        self.box_hi = np.where(np.isfinite(self.hi), self.hi, UNBOUNDED)
        if form.start_lo is not None and form.start_hi is not None:
            self.box_lo, self.box_hi = form.start_lo, form.start_hi
        self.log_scale = np.array([p.scale == "log" for p in law.params])  # type: ignore[attr-defined]
        self.p = len(self.lo)

    # ---- the model -----------------------------------------------------------------------------------------
    def natural(self, theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_2d(theta)
        return np.where(self.log_scale, np.exp(np.where(self.log_scale, theta, 0.0)), theta)

    def predict(self, theta: np.ndarray, X: dict[str, np.ndarray]) -> np.ndarray:
        """Predicted loss (K, n) for K working vectors at inputs ``X`` (arrays of n)."""
        with np.errstate(all="ignore"):
            pred, _ = self.law.batch(  # type: ignore[attr-defined]
                self.natural(theta), {k: v[None, :] for k, v in X.items()}, jacobian=False
            )
        return np.asarray(pred, dtype=float)

    def jacobian(self, theta: np.ndarray, X: dict[str, np.ndarray]) -> np.ndarray:
        """∂L̂/∂θ_work (n, p) at one working vector; non-finite entries are 0 (a point the law cannot
        linearise there teaches nothing)."""
        nat = self.natural(theta)
        with np.errstate(all="ignore"):
            _, J = self.law.batch(nat, {k: v[None, :] for k, v in X.items()})  # type: ignore[attr-defined]
            J = np.column_stack([j[0] for j in J]) * np.where(self.log_scale, nat[0], 1.0)
        return np.where(np.isfinite(J), J, 0.0)

    def subset(self, idx: Sequence[int]) -> dict[str, np.ndarray]:
        ix = np.asarray(idx, dtype=int)
        return {k: v[ix] for k, v in self.X.items()}

    # ---- fitting -------------------------------------------------------------------------------------------
    def random_starts(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """``k`` uniform draws inside the working bounds (the protocol's random starts)."""
        return self.box_lo + (self.box_hi - self.box_lo) * rng.random((k, self.p))

    def objective_for(self, n: int) -> str:
        """The objective a fit of ``n`` points minimises ("lse-auto" resolved)."""
        if self.objective == "lse-auto":
            return "rel-sse" if n < FEW_POINTS else "huber-log"
        return self.objective

    def _residuals(
        self, theta: np.ndarray, X: dict, y: np.ndarray, objective: str = "mse-raw"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Residuals (K, n) and working-space Jacobians (K, n, p) at K working vectors: raw, relative, or
        log residuals (huber-log)."""
        nat = self.natural(theta)
        with np.errstate(all="ignore"):
            pred, J = self.law.batch(nat, X)  # type: ignore[attr-defined]
            Jw = np.stack(J, axis=-1) * np.where(self.log_scale, nat, 1.0)[:, None, :]
            if objective == "huber-log":
                return np.log(pred) - np.log(y), Jw / pred[..., None]
            if objective == "rel-sse":
                return pred / y - 1.0, Jw / y[..., None]
            r = pred - y
        return r, Jw

    def fit(
        self, idx: Sequence[int], starts: np.ndarray, *, max_iter: int = MAX_ITER, n_polish: int = N_POLISH
    ) -> Fits:
        """Least squares on the pool rows ``idx`` from every row of ``starts`` (k, p) at once: a projected
        Levenberg–Marquardt run on the whole batch, then scipy's L-BFGS-B (ScaleBench's tolerances) from the
        best ``n_polish`` distinct points: LM is fast into a basin but slow along farseer's flat valleys,
        where L-BFGS-B finishes in tens of steps. With no rows the first start is returned (SSR 0)."""
        starts = np.clip(np.atleast_2d(np.asarray(starts, dtype=float)), self.lo, self.hi)
        if len(idx) == 0:
            return Fits(starts[:1], np.zeros(1), 0, np.zeros(1))
        ix = np.asarray(idx, dtype=int)
        X = {k: v[ix][None, :] for k, v in self.X.items()}
        y = self.y[ix][None, :]
        from florenz_scaling.fit._blas import single_threaded_blas

        # One BLAS thread: OpenBLAS's idle workers spin on tiny solves and starve L-BFGS-B (fit._blas).
        with single_threaded_blas():
            return self._fit(X, y, starts, max_iter, n_polish, self.objective_for(len(ix)))

    def _fit(
        self, X: dict, y: np.ndarray, starts: np.ndarray, max_iter: int, n_polish: int, objective: str
    ) -> Fits:
        with np.errstate(all="ignore"):
            theta, ssr = _lm(
                lambda t: self._residuals(t, X, y, objective), starts, self.lo, self.hi, max_iter
            )
        order = np.argsort(np.where(np.isfinite(ssr), ssr, np.inf), kind="stable")
        theta, ssr = theta[order], ssr[order]
        # Distinct optima only: many starts fall into one basin, and the criterion weighs modes, not starts.
        span = np.maximum(self.box_hi - self.box_lo, 1e-12)
        keep: list[int] = []
        for i in range(len(theta)):
            if not np.isfinite(ssr[i]):
                break
            if not any(np.all(np.abs(theta[i] - theta[j]) <= 1e-3 * span) for j in keep):
                keep.append(i)
        if not keep:  # every start non-finite: the first start, scored as a failed fit
            return Fits(starts[:1], np.array([np.inf]), y.shape[1], np.array([np.inf]))
        theta, ssr = theta[keep], ssr[keep]
        if objective == "rel-sse":  # a sum of squares: its scalar form from the residuals

            def scalar(t: np.ndarray) -> tuple[float, np.ndarray]:
                r, J = self._residuals(t[None, :], X, y, objective)
                f = float((r * r).sum())
                return (
                    (f, 2.0 * np.einsum("kn,knp->p", r, J)) if np.isfinite(f) else (np.inf, np.zeros(len(t)))
                )

        else:
            prob = BatchProblem(self.law, {k: v[0] for k, v in X.items()}, y[0], objective=objective)
            scalar = prob.scalar
        if objective == "huber-log":  # rank LM's optima (of squared log residuals) by the objective itself
            ssr = prob.value_and_grad(theta)[0]
            order = np.argsort(ssr, kind="stable")
            theta, ssr = theta[order], ssr[order]
        if n_polish:
            from scipy.optimize import minimize

            bounds = list(zip(self.lo, self.hi, strict=True))
            for i in range(min(n_polish, len(theta))):
                with np.errstate(all="ignore"):
                    m = minimize(scalar, theta[i], jac=True, method="L-BFGS-B", bounds=bounds, options=LBFGSB)
                if np.isfinite(m.fun) and m.fun < ssr[i]:
                    theta[i], ssr[i] = np.clip(m.x, self.lo, self.hi), float(m.fun)
            order = np.argsort(ssr, kind="stable")
            theta, ssr = theta[order], ssr[order]
        if objective == "mse-raw":
            return Fits(theta, ssr, y.shape[1])
        with np.errstate(all="ignore"):
            pred, _ = self.law.batch(self.natural(theta), X, jacobian=False)  # type: ignore[attr-defined]
            rss = ((pred - y) ** 2).sum(axis=1)
        return Fits(theta, ssr, y.shape[1], np.where(np.isfinite(rss), rss, np.inf))


def _lm(
    resid: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    theta: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Projected Levenberg–Marquardt for a batch of starts; returns (θ, SSR) per start.

    Why LM and not L-BFGS: the objective is a sum of squares and the law's Jacobian is exact, so the
    Gauss–Newton model is nearly right and a start converges in tens of iterations, where L-BFGS needs
    hundreds (measured on farseer: 64 starts in ~0.1 s against ~2 s). Bounds: the step is clipped to the box
    and a parameter held at a bound by its gradient is frozen for that step (active set)."""
    K, p = theta.shape
    r, J = resid(theta)
    f = np.einsum("kn,kn->k", r, r)
    f = np.where(np.isfinite(f) & np.all(np.isfinite(J), axis=(1, 2)), f, np.inf)
    lam = np.full(K, 1e-3)
    live = np.isfinite(f)
    eye = np.eye(p)
    for _ in range(max_iter):
        if not live.any():
            break
        ix = np.flatnonzero(live)
        Jl, rl, tl = J[ix], r[ix], theta[ix]
        g = np.einsum("knp,kn->kp", Jl, rl)
        A = np.einsum("knp,knq->kpq", Jl, Jl)
        held = ((tl <= lo) & (g > 0)) | ((tl >= hi) & (g < 0))
        d = np.maximum(np.einsum("kpp->kp", A), 1e-30)
        A = A + lam[ix, None, None] * d[:, :, None] * eye
        A = np.where((held[:, :, None] | held[:, None, :]), 0.0, A) + held[:, :, None] * eye
        g = np.where(held, 0.0, g)
        try:
            step = -np.linalg.solve(A, g[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = -g / d
        step = np.where(np.isfinite(step), step, 0.0)
        cand = np.clip(tl + step, lo, hi)
        rc, Jc = resid(cand)
        fc = np.einsum("kn,kn->k", rc, rc)
        fc = np.where(np.isfinite(fc) & np.all(np.isfinite(Jc), axis=(1, 2)), fc, np.inf)
        acc = fc < f[ix]
        rel = (f[ix] - fc) / np.maximum(f[ix], 1e-300)
        a = ix[acc]
        theta[a], r[a], J[a], f[a] = cand[acc], rc[acc], Jc[acc], fc[acc]
        lam[ix] = np.where(acc, np.maximum(lam[ix] / 3.0, 1e-12), lam[ix] * 4.0)
        # Stop a start once an accepted step gains nothing relative, or no damping finds a decrease.
        done = (acc & (rel < 1e-10)) | (lam[ix] > 1e10) | (np.abs(cand - tl).max(axis=1) == 0)
        live[ix[done]] = False
    return theta, f
