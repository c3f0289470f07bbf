"""Fitting any law given by its prediction and exact Jacobian: a batched objective over all starts.

The parameters are fitted in working space (log of a log-scale parameter), from a start grid, with the same
optimiser as the log-sum-exp laws (``fit._optim.multistart``: a batched L-BFGS screen of every start, then
scipy's L-BFGS-B polish of the best distinct few). The objective is the one the law's residual space asks
for: Huber(δ) of log residuals, summed (``"huber-log"``, the recipe) or the squared error of the raw loss
(``"mse-raw"``, what ScaleBench fits). Gradients come from the law's Jacobian, so they are exact.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np

from florenz_scaling.fit._optim import OBJECTIVES, multistart

MAX_GRID = 3000  # a start grid larger than this is subsampled (seeded): 9 parameters × 3 values = 19,683
N_WARM = 4  # a bootstrap resample is polished from this many of the full fit's best local optima


class BatchProblem:
    """The objective of one law on one data set, for a batch of working parameter vectors (K, p)."""

    def __init__(
        self,
        law: Any,
        X: Mapping[str, np.ndarray],
        L: np.ndarray,
        *,
        objective: str,
        delta: float = 1e-3,
        weights: Any = None,
    ) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}")
        self.law, self.objective, self.delta = law, objective, delta
        self.X = {k: np.asarray(v, dtype=float)[None, :] for k, v in X.items()}
        self.L = np.asarray(L, dtype=float)
        self.logL = np.log(self.L)
        self.w = np.ones(len(self.L)) if weights is None else np.asarray(weights, dtype=float)
        self.log_scale = np.array([p.scale == "log" for p in law.params])

    def natural(self, theta: np.ndarray) -> np.ndarray:
        return np.where(self.log_scale, np.exp(np.where(self.log_scale, theta, 0.0)), theta)

    def value_and_grad(self, theta: np.ndarray, fast: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Objective (K,) and gradient (K, p); a non-finite start gets +inf and a zero gradient."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        nat = self.natural(theta)
        with np.errstate(all="ignore"):
            pred, J = self.law.batch(nat, self.X)
            if self.objective == "mse-raw":
                r = pred - self.L
                f = (self.w * r * r).sum(axis=1)
                psi = 2.0 * self.w * r
            else:
                r = np.log(pred) - self.logL
                d = self.delta
                ar = np.abs(r)
                f = (self.w * np.where(ar <= d, 0.5 * r * r, d * (ar - 0.5 * d))).sum(axis=1)
                psi = np.clip(r, -d, d) * self.w / pred
            g = np.column_stack([(psi * Jj).sum(axis=1) for Jj in J]) * np.where(self.log_scale, nat, 1.0)
        bad = ~np.isfinite(f) | ~np.all(np.isfinite(g), axis=1)
        f[bad] = np.inf
        g[bad] = 0.0
        return f, g

    def scalar(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = self.value_and_grad(theta[None, :])
        return float(f[0]), g[0]

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        """Residuals in the objective's space at one working vector (for likelihood-ratio tests)."""
        with np.errstate(all="ignore"):
            pred = self.law.batch(self.natural(np.atleast_2d(theta)), self.X, jacobian=False)[0]
        return pred - self.L if self.objective == "mse-raw" else np.log(pred) - self.logL


def work_bounds(law: Any) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([p.to_work(p.bounds[0]) if np.isfinite(p.bounds[0]) else -np.inf for p in law.params])
    hi = np.array([p.to_work(p.bounds[1]) if np.isfinite(p.bounds[1]) else np.inf for p in law.params])
    return lo, hi


def start_grid(law: Any, *, max_grid: int = MAX_GRID, random_starts: int = 0, seed: int = 0) -> np.ndarray:
    """The product of every parameter's start values (working space), subsampled above ``max_grid`` rows,
    plus ``random_starts`` uniform draws inside the (finite) working bounds."""
    lo, hi = work_bounds(law)
    axes = []
    for p, a, b in zip(law.params, lo, hi, strict=True):
        if p.start:
            axes.append([float(p.to_work(s)) for s in p.start])
        else:  # no start given: the middle of the bounds, or 0 / 1 when unbounded
            mid = 0.5 * (a + b) if np.isfinite(a) and np.isfinite(b) else (a + 1 if np.isfinite(a) else 0.0)
            axes.append([float(mid if np.isfinite(mid) else 0.0)])
    rng = np.random.default_rng(seed)
    size = int(np.prod([len(a) for a in axes]))
    if size <= max_grid:
        grid = np.array(list(itertools.product(*axes)), dtype=float)
    else:
        grid = np.column_stack([rng.choice(a, max_grid) for a in axes])
    if random_starts:
        a = np.where(np.isfinite(lo), lo, -5.0)
        b = np.where(np.isfinite(hi), hi, 5.0)
        grid = np.vstack([grid, a + (b - a) * rng.random((random_starts, len(a)))])
    return grid


def fit_batch(
    law: Any,
    X: Mapping[str, np.ndarray],
    L: np.ndarray,
    *,
    objective: str,
    delta: float = 1e-3,
    starts: np.ndarray | None = None,
    screen: bool = True,
    n_polish: int = 8,
) -> tuple[dict[str, Any], BatchProblem, np.ndarray, np.ndarray]:
    """The multistart optimum (``_optim.multistart``'s dict), the problem and the working bounds."""
    from florenz_scaling.fit._blas import single_threaded_blas

    problem = BatchProblem(law, X, L, objective=objective, delta=delta)
    lo, hi = work_bounds(law)
    grid = law.start_grid() if starts is None else np.atleast_2d(np.asarray(starts, dtype=float))
    # inf − inf in the screen's relative decrease of a start that never had a finite value: harmless
    with single_threaded_blas(), np.errstate(invalid="ignore"):
        out = multistart(problem, grid, lo, hi, n_polish=n_polish, screen_iter=(10, 200) if screen else None)
    return out, problem, lo, hi
