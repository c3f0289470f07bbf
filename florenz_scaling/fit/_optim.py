"""Batched objective and optimiser for log-sum-exp scaling laws (Chinchilla and saturating-compute forms).

The model is  log L̂ = LSE(a_1 − α_1·x_1, …, a_m − α_m·x_m, e)  with x_j = log of an input (N, D or C), so
Chinchilla is m = 2 (θ = a, b, e, α, β) and the saturating compute law m = 1 (θ = a, e, α). The objective is
the Huber loss of the log residuals (``objective="huber-log"``) or the squared error of the raw loss
(``"mse-raw"``), summed (or averaged) over points, with an analytic gradient.

Speed comes from evaluating the objective for *all* starts of the initialisation grid in one numpy pass and
running a projected L-BFGS on the whole batch; only the few best candidates are then polished with scipy's
L-BFGS-B at tight tolerances, so the final answer is a genuine L-BFGS-B optimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from florenz_scaling.fit._blas import single_threaded_blas

# "huber-log": Huber(delta) of log L_hat - log L (the recipe; robust, but its answer is biased towards the
# lower envelope when noise is multiplicative and skewed). "mse-raw": (L_hat - L)^2, the Gaussian MLE on the
# raw loss that Open-Athena prefers for its likelihood properties.
OBJECTIVES = ("huber-log", "mse-raw")


@dataclass
class LSEProblem:
    """Data and objective settings for one fit. ``weights`` are per-point multiplicities (bootstrap)."""

    X: np.ndarray  # (n, m) log inputs
    logL: np.ndarray  # (n,)
    delta: float = 1e-3
    weights: np.ndarray | None = None
    reduction: str = "sum"
    objective: str = "huber-log"

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}")
        self.X = np.asarray(self.X, dtype=float)
        if self.X.ndim == 1:
            self.X = self.X[:, None]
        self.logL = np.asarray(self.logL, dtype=float)
        w = np.ones(len(self.logL)) if self.weights is None else np.asarray(self.weights, dtype=float)
        if self.reduction == "mean":
            w = w / w.sum()
        elif self.reduction != "sum":
            raise ValueError("reduction must be 'sum' or 'mean'")
        self.w = w
        # float32 copies for the screening pass: exp/log are ~5x faster, and 1e-7 relative precision is far
        # below the Huber threshold (1e-3), so rankings between starts are unaffected.
        self._f32 = (self.X.astype(np.float32), self.logL.astype(np.float32), w.astype(np.float32))
        self._raw = (np.exp(self.logL), np.exp(self.logL).astype(np.float32))

    @property
    def m(self) -> int:
        return self.X.shape[1]

    def value_and_grad(self, theta: np.ndarray, fast: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Objective and gradient for a batch of parameter vectors ``theta`` of shape (K, 2m+1).

        ``fast=True`` computes in float32 (screening only); results are returned as float64.
        """
        m = self.m
        theta = np.atleast_2d(theta)
        X, logL, w = self._f32 if fast else (self.X, self.logL, self.w)
        if fast:
            theta = theta.astype(np.float32)
        a, e, al = theta[:, :m], theta[:, m], theta[:, m + 1 :]
        # One contiguous (K, n) plane per term: far faster in numpy than a (K, n, m+1) array reduced over
        # its short last axis. No max-subtraction is needed because the bounds keep every term within
        # exp's range (a <= 80, alpha >= 0, e >= -20), so the sum never overflows or vanishes.
        planes = [np.exp(a[:, j, None] - al[:, j, None] * X[None, :, j]) for j in range(m)]
        ee = np.exp(e)[:, None]
        s = ee + planes[0]
        for P in planes[1:]:
            s += P
        if self.objective == "mse-raw":
            r = s - self._raw[1 if fast else 0]  # s is L_hat itself
            # Far grid starts predict exp(60): their squared error overflows to inf; the screen drops them.
            with np.errstate(over="ignore", invalid="ignore"):
                f = np.einsum("kn,n->k", r * r, w)
            psi = 2.0 * r * w  # d f / d L_hat; d L_hat / d term = exp(term)
        else:
            r = np.log(s)
            r -= logL
            d = self.delta
            ar = np.abs(r)
            hub = np.where(ar <= d, 0.5 * r * r, d * (ar - 0.5 * d))
            f = np.einsum("kn,n->k", hub, w)  # einsum, not BLAS: idle OpenBLAS threads spin and starve scipy
            psi = np.clip(r, -d, d)
            psi *= w
            psi /= s  # psi * softmax weight of a term = (psi / s) * exp(term)
        g = np.empty_like(theta)
        for j, P in enumerate(planes):
            with np.errstate(over="ignore", invalid="ignore"):
                P *= psi
                g[:, j] = P.sum(axis=1)
                g[:, m + 1 + j] = -np.einsum("kn,n->k", P, X[:, j])
        g[:, m] = psi.sum(axis=1) * ee[:, 0]
        return f.astype(np.float64), g.astype(np.float64)

    def scalar(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Single-start objective and gradient, in the form scipy.optimize.minimize(jac=True) expects."""
        f, g = self.value_and_grad(theta[None, :])
        return float(f[0]), g[0]


def batched_lbfgs(
    problem: LSEProblem,
    x0: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    maxiter: int = 200,
    mem: int = 10,
    gtol: float = 1e-8,
    ftol: float = 1e-10,
    max_ls: int = 25,
    fast: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projected L-BFGS run on all rows of ``x0`` at once; returns (x, f, converged-mask).

    Each start keeps its own curvature history; a start stops when its projected gradient or its relative
    decrease is below tolerance, and stopped starts are no longer evaluated. This is a screening optimiser:
    it need not match L-BFGS-B step for step, only bring every start close to its basin's minimum.
    """
    x_out = np.clip(np.array(x0, dtype=float), lo, hi)
    K, p = x_out.shape
    f_out, g_out = problem.value_and_grad(x_out, fast)
    done = np.zeros(K, dtype=bool)
    # State of the live starts only: finished starts are dropped from these arrays (compaction), so every
    # array operation below runs on contiguous data without fancy indexing into the full batch.
    live = np.arange(K)
    x, f, g = x_out.copy(), f_out.copy(), g_out.copy()
    S = np.zeros((mem, K, p))
    Y = np.zeros((mem, K, p))
    rho = np.zeros((mem, K))
    gamma = np.ones(K)
    head = 0
    for _ in range(maxiter):
        if live.size == 0:
            break
        # Two-loop recursion, newest pair first; skipped pairs have rho = 0 and contribute nothing.
        q = g.copy()
        alphas = np.zeros((mem, live.size))
        order = [(head - 1 - i) % mem for i in range(mem)]
        for j in order:
            alphas[j] = rho[j] * np.einsum("kp,kp->k", S[j], q)
            q -= alphas[j][:, None] * Y[j]
        q *= gamma[:, None]
        for j in reversed(order):
            beta = rho[j] * np.einsum("kp,kp->k", Y[j], q)
            q += (alphas[j] - beta)[:, None] * S[j]
        d = -q
        # Variables held at a bound with the gradient pushing outwards stay fixed (projected direction).
        fixed = ((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0))
        d[fixed] = 0.0
        bad = np.einsum("kp,kp->k", d, g) >= 0
        if bad.any():  # not a descent direction: fall back to steepest descent and forget the history
            d[bad] = -g[bad]
            d[fixed] = 0.0
            rho[:, bad] = 0.0
            gamma[bad] = 1.0
        fresh = rho.max(axis=0) == 0
        t = np.where(fresh, np.minimum(1.0, 1.0 / np.maximum(np.abs(d).sum(axis=1), 1e-300)), 1.0)
        # Backtracking Armijo line search on the projected path, only re-evaluating starts that failed.
        xn, fn, gn = x.copy(), f.copy(), g.copy()
        todo = np.arange(live.size)
        ok = np.zeros(live.size, dtype=bool)
        for _ls in range(max_ls):
            cand = np.clip(x[todo] + t[todo, None] * d[todo], lo, hi)
            fc, gc = problem.value_and_grad(cand, fast)
            dec = np.einsum("kp,kp->k", g[todo], cand - x[todo])
            acc = fc <= f[todo] + 1e-4 * dec
            xn[todo[acc]], fn[todo[acc]], gn[todo[acc]] = cand[acc], fc[acc], gc[acc]
            ok[todo[acc]] = True
            todo = todo[~acc]
            if todo.size == 0:
                break
            t[todo] *= 0.5
        s_ = xn - x
        y_ = gn - g
        sy = np.einsum("kp,kp->k", s_, y_)
        yy = np.einsum("kp,kp->k", y_, y_)
        good = ok & (sy > 1e-12 * np.maximum(yy, 1e-300))
        S[head], Y[head] = s_, y_
        rho[head] = np.where(good, 1.0 / np.where(good, sy, 1.0), 0.0)
        gamma = np.where(good, sy / np.where(good, yy, 1.0), gamma)
        head = (head + 1) % mem
        rel = (f - fn) / np.maximum(np.maximum(np.abs(f), np.abs(fn)), 1e-300)
        x, f, g = xn, fn, gn
        pg = np.abs(np.clip(x - g, lo, hi) - x).max(axis=1)
        # A start with no acceptable step is as good as the screen can make it: it stops too.
        stop = ~ok | (rel <= ftol) | (pg <= gtol)
        if stop.any():
            x_out[live[stop]], f_out[live[stop]], g_out[live[stop]] = x[stop], f[stop], g[stop]
            done[live[stop]] = True
            keep_ = ~stop
            live, x, f, g = live[keep_], x[keep_], f[keep_], g[keep_]
            S, Y, rho, gamma = S[:, keep_], Y[:, keep_], rho[:, keep_], gamma[keep_]
    x_out[live], f_out[live], g_out[live] = x, f, g
    return x_out, f_out, done


def polish(
    problem: LSEProblem,
    x0: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    maxiter: int = 10_000,
    deep: bool = False,
):
    """scipy L-BFGS-B from ``x0`` with the recipe's tight tolerances (ftol 1e-12, gtol 1e-10).

    ``deep=True`` sets ftol = 0 and gtol = 1e-14, so L-BFGS-B runs until its line search can no longer
    decrease the objective. The valleys of this law are so flat that the relative-reduction test stops a
    run anywhere along the valley floor (measured here: 1e-8 relative above the minimum); a naive loop over
    4,500 starts only reaches the floor because some of its many runs stop there by chance.
    """
    from scipy.optimize import minimize

    ftol, gtol = (0.0, 1e-14) if deep else (1e-12, 1e-10)
    return minimize(
        problem.scalar,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=list(zip(lo, hi, strict=True)),
        options={"ftol": ftol, "gtol": gtol, "maxiter": maxiter, "maxfun": 2 * maxiter},
    )


def multistart(
    problem: LSEProblem,
    starts: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    n_polish: int = 8,
    screen_iter: tuple[int, int] | None = (10, 200),
    keep: float = 0.1,
) -> dict:
    """Screen every start with the batched optimiser, polish the best distinct few with scipy, keep the best.

    Screening is successive halving in float32: all starts take ``screen_iter[0]`` batched L-BFGS steps, the
    best ``keep`` fraction (at least 50) take ``screen_iter[1]`` more, and the ``n_polish`` best distinct
    points are polished in float64 with scipy's L-BFGS-B run to its floor (``polish(deep=True)``). The
    benchmark checks the answer against a naive per-start loop at the recipe's tolerances.
    ``screen_iter=None`` skips screening and polishes every start (warm starts, e.g. per bootstrap resample).
    ``local_optima`` in the result lists each polished candidate's (theta, objective), best first.
    """
    with single_threaded_blas():
        return _multistart(problem, starts, lo, hi, n_polish=n_polish, screen_iter=screen_iter, keep=keep)


def _multistart(problem, starts, lo, hi, *, n_polish, screen_iter, keep) -> dict:  # noqa: ANN001
    starts = np.clip(np.asarray(starts, dtype=float), lo, hi)
    if screen_iter is None:
        xs, fs = starts, problem.value_and_grad(starts)[0]
        n_keep, n_polish = 0, len(starts)
    else:
        xs, fs, _ = batched_lbfgs(problem, starts, lo, hi, maxiter=screen_iter[0], fast=True)
        n_keep = min(len(starts), max(50, int(np.ceil(keep * len(starts)))))
        top = np.argsort(np.where(np.isfinite(fs), fs, np.inf))[:n_keep]
        xs, fs, _ = batched_lbfgs(problem, xs[top], lo, hi, maxiter=screen_iter[1], fast=True)
    order = np.argsort(np.where(np.isfinite(fs), fs, np.inf))
    picked: list[int] = []
    span = np.where(np.isfinite(hi - lo), np.maximum(hi - lo, 1.0), 1.0)  # unbounded: unit scale
    for i in order:
        if not np.isfinite(fs[i]):
            continue
        # Skip candidates in the same spot as one already picked (many grid starts share a basin).
        if any(np.all(np.abs(xs[i] - xs[j]) <= 1e-4 * span) for j in picked):
            continue
        picked.append(int(i))
        if len(picked) >= n_polish:
            break
    results = sorted((polish(problem, xs[i], lo, hi, deep=True) for i in picked), key=lambda r: r.fun)
    if not results:
        raise ValueError("no finite objective at any start")
    best = results[0]
    # Distinct optima only (many candidates polish to the same point); they seed bootstrap resamples.
    optima: list[dict] = []
    for r in results:
        if not any(np.abs(r.x - np.array(o["theta"])).max() <= 1e-3 for o in optima):
            optima.append({"theta": r.x.tolist(), "objective": float(r.fun)})
    return {
        "res": best,
        "n_starts": len(starts),
        "n_screened_long": n_keep,
        "n_polished": len(picked),
        "nit": int(best.nit),
        "local_optima": optima,
    }
