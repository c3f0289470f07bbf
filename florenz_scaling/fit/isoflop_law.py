"""Approach 3: the compute-optimal allocation of a fitted law (Chinchilla by default), as exponents of C.

The law is looked up in the registry and must define an allocation (``Law.has_allocation``). A law's
allocation assumes C = 6·N·D; a sweep's C is whatever the sweep measured (a Florenz sweep: forward GMACs ×
(1 + P_t/P)), so the runs' own compute model C ≈ k·N·D is measured (k: geometric mean of C/(N·D)) and the
allocation is taken at 6·C/k. With k = 6 (Chinchilla's data, or a CSV whose C was derived) it is the
law's allocation unchanged; the exponents do not depend on k.

Intervals: bootstrap over runs (``fit.bootstrap.law_refits``: all resamples refitted at once where the law
has a batched refit, else one by one by its resample fitter), each resample's allocation exponents taken;
percentile intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from florenz_scaling.fit.bootstrap import law_refits
from florenz_scaling.fit.isoflop import LEVEL, Exponent, _percentiles
from florenz_scaling.fit.laws import LawError, get_law

DEFAULT_LAW = "chinchilla"


def compute_factor(points: Any) -> float:
    """k in C ≈ k·N·D for these runs: the geometric mean of C/(N·D) (6 for the Chinchilla convention)."""
    ratio = np.asarray(points["C"], float) / (np.asarray(points["N"], float) * np.asarray(points["D"], float))
    return float(np.exp(np.mean(np.log(ratio))))


def _allocation_logs(law: Any, params: dict[str, float], C: np.ndarray, k: float) -> tuple[np.ndarray, ...]:
    """log N_opt and log D_opt (the sweep's D: C/(k·N_opt)) at budgets C in the sweep's units."""
    n_opt = np.asarray(law.allocation(params, 6.0 * C / k)["N_opt"], dtype=float)
    return np.log(n_opt), np.log(C / (k * n_opt))


def law_exponents(
    points: Any,
    law: str = DEFAULT_LAW,
    *,
    budgets: Sequence[float] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    point: Any = None,
    level: float = LEVEL,
    batched: bool = True,
) -> Exponent:
    """Approach 3 on a points table (N, D, C, loss; ``run_id`` names the resampling unit): the law's
    allocation N_opt(C), D_opt(C) as power laws of C, with bootstrap percentile intervals.

    ``budgets`` are where the allocation is evaluated (default: the range of the table's C); a power-law
    allocation (Chinchilla) gives the same slope anywhere, a law without one its mean slope over them.
    ``point`` is a fit of the same law already made on the same table. ``batched``: refit all resamples at
    once where the law can (``fit.bootstrap.law_refits``; the same resamples and optima as one by one).
    """
    found = get_law(law)
    if not found.has_allocation:
        raise LawError(f"law {law!r} has no compute-optimal allocation; approach 3 needs one")
    C = np.asarray(points["C"], dtype=float)
    grid = np.geomspace(*(sorted(budgets)[:: len(budgets) - 1] if budgets else (C.min(), C.max())), 8)
    if not grid[-1] > grid[0]:
        raise ValueError("approach 3: the budgets span no range of C")
    k = compute_factor(points)
    logC = np.log(grid)
    point = point or found.full_fitter()(points)
    logN, logD = _allocation_logs(found, point.params, grid, k)
    xc = logC - logC.mean()

    def slope(y: np.ndarray) -> float:
        return float((y - y.mean()) @ xc / (xc @ xc))

    a, b = slope(logN), slope(logD)
    kN, kD = float(logN.mean() - a * logC.mean()), float(logD.mean() - b * logC.mean())
    draws_a, draws_b, failures = [], [], []
    if n_boot:
        table = points.reset_index(drop=True)
        _, draws = law_refits(point, table, "run_id", n_boot, seed, failures, batched=batched)
        for r in draws:
            try:
                with np.errstate(all="ignore"):
                    ln, ld = _allocation_logs(found, r.params, grid, k)
            except (ValueError, LawError) as e:  # a resample without an allocation (an exponent at 0)
                failures.append(str(e))
                continue
            if np.isfinite(ln).all() and np.isfinite(ld).all():
                draws_a.append(slope(ln))
                draws_b.append(slope(ld))
    lo, hi = _percentiles(np.asarray(draws_a), level)
    b_lo, b_hi = _percentiles(np.asarray(draws_b), level)
    conv = "C = 6·N·D" if math.isclose(k, 6.0, rel_tol=1e-3) else f"the runs' C ≈ {k:.4g}·N·D (law at 6·C/k)"
    note = f"{found.name} allocation; compute model {conv}; bootstrap over runs, {len(failures)} failed"
    return Exponent("approach3", a, lo, hi, b, b_lo, b_hi, kN, kD, len(points), n_boot, len(draws_a), level,
                    found.name, note)  # fmt: skip
