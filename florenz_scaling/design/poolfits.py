"""Fits of one law on many subsets of one pool, warm-started from each other: the refits of the tolerance
replay (``design.replay``) and the fits ``propose`` scores around, for every law with a formula form
(``design.formula``: formula laws, and chinchilla through its adapter).

Why warm starts. A replay refits after every purchase, and consecutive sets differ by one run: the previous
fit's distinct optima (``N_WARM``) plus ``N_REFIT_RANDOM`` fresh random starts find the new optimum in one
batched Levenberg–Marquardt pass and one L-BFGS-B polish (``design.lsq``: ~0.07 s on 225 Chinchilla runs
against ~1.5 s for the built-in 4,500-start recipe). The first fit, and any fit the caller asks to be fresh,
runs from ``N_STARTS`` random starts. Fits are cached by the set of rows: strategies revisit the same sets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from florenz_scaling.design import acquire
from florenz_scaling.design.lsq import Fits, LawFitter

N_STARTS = 64  # random starts of a fit from nothing (ScaleBench's count)
N_WARM = 6  # distinct optima of the last fit carried as warm starts
N_REFIT_RANDOM = 4  # random starts added to the warm ones


class FitPrediction:
    """One lsq fit with the ``predict(**inputs)`` and ``params`` of a ``FitResult`` (what replay reads)."""

    def __init__(self, fitter: LawFitter, fits: Fits) -> None:
        self.fitter, self.fits = fitter, fits
        nat = fitter.natural(fits.best)[0]
        self.params = {q.name: float(v) for q, v in zip(fitter.law.params, nat, strict=True)}  # type: ignore[attr-defined]

    def predict(self, **inputs: Any) -> np.ndarray:
        """The prediction, shaped like the inputs (a scalar for scalar inputs, as ``FitResult.predict``)."""
        arrs = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in inputs.values()))
        X = {k: a.reshape(-1) for k, a in zip(inputs, arrs, strict=True)}
        return self.fitter.predict(self.fits.best, X)[0].reshape(arrs[0].shape)


class PoolFits:
    """A law on a pool (inputs ``X``, losses ``y``): cached, warm-started least-squares fits of row subsets,
    and the ``design.acquire`` scores around them."""

    def __init__(
        self,
        law: Any,
        X: Mapping[str, np.ndarray],
        y: np.ndarray,
        *,
        seed: int = 0,
        objective: str | None = None,
        n_starts: int = N_STARTS,
    ) -> None:
        self.fitter = LawFitter(law, dict(X), y, objective=objective)
        self.rng = np.random.default_rng(seed)
        self.n_starts = n_starts
        self.min_points = self.fitter.p
        self._cache: dict[frozenset[int], Fits | None] = {}
        self._last: Fits | None = None
        self.n_fits = 0

    def fits(self, idx: Sequence[int], *, fresh: bool = False) -> Fits | None:
        """The fit to the rows ``idx`` (None below one point per parameter or when every start fails);
        warm from the last fit made unless ``fresh``."""
        key = frozenset(int(i) for i in idx)
        if key in self._cache:
            return self._cache[key]
        if len(key) < self.min_points:
            return None
        f = self.fitter
        warm = None if fresh or self._last is None else self._last.theta[:N_WARM]
        if warm is None:
            res = f.fit(sorted(key), f.random_starts(self.rng, self.n_starts))
        else:
            res = f.fit(sorted(key), np.vstack([warm, f.random_starts(self.rng, N_REFIT_RANDOM)]), n_polish=1)
        self.n_fits += 1
        ok = bool(np.isfinite(res.ssr[0]))
        self._cache[key] = res if ok else None
        if ok:
            self._last = res
        return self._cache[key]

    def result(self, idx: Sequence[int]) -> FitPrediction | None:
        """The fit to ``idx`` as a ``FitPrediction`` (None when there is none)."""
        res = self.fits(idx)
        return None if res is None else FitPrediction(self.fitter, res)

    def pick(
        self,
        kind: str,
        bought: Sequence[int],
        left: Sequence[int],
        cost: np.ndarray,
        total: float,
        targets: Mapping[str, np.ndarray],
        **options: Any,
    ) -> int:
        """The row of ``left`` that ``acquire.score(kind, …)`` ranks first around the fit to ``bought`` (the
        cheapest when there is no fit or no finite score)."""
        left = np.asarray(left, dtype=int)
        res = self.fits(bought)
        if res is None:
            return int(left[np.argmin(cost[left])])
        s = self.scores(kind, res, bought, left, cost[left], total, targets, **options)
        s = np.where(np.isfinite(s), s, -np.inf)
        return int(left[np.argmax(s)]) if np.isfinite(s).any() else int(left[np.argmin(cost[left])])

    def scores(
        self,
        kind: str,
        fits: Fits,
        bought: Sequence[int],
        cand: Sequence[int],
        cand_cost: np.ndarray,
        total: float,
        targets: Mapping[str, np.ndarray],
        **options: Any,
    ) -> np.ndarray:
        """``acquire.score`` of the rows ``cand`` around ``fits`` (the fit to ``bought``)."""
        T = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in targets.items()}
        return acquire.score(
            kind,
            self.fitter,
            fits,
            np.asarray(bought, dtype=int),
            np.asarray(cand, dtype=int),
            np.asarray(cand_cost, dtype=float),
            total,
            T,
            **options,
        )
