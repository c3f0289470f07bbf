"""Approach 1: the envelope of loss against compute over all runs' evaluation points, and its minimisers.

Every run's curve (log loss and log D against log C, linear between its evaluation points) is read at each
compute of a log-spaced grid; at each compute the sizes that reach it compete, each at its best run there.
The best size is the envelope's minimiser; when it has a reached size on both sides, the parabola through
it and its two neighbours (in log N) places the minimum between the discrete sizes, so N_opt(C) is not a
staircase. Computes whose best size is the smallest or largest one reached are not bracketed and left out.
Then log N_opt = a·log C + k as for the other approaches. Runs with one point (final losses only) are read at
their own C alone.

For WSD sweeps the caller passes the branch ends only: a trunk's points are not decayed and would bias the
envelope (pitfall 7). Intervals: bootstrap over runs (a resample's repeated runs count once).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from florenz_scaling.fit.isoflop import LEVEL, Exponent, fit_exponent

GRID = 48  # computes on the envelope's grid


def _curves(
    table: Any,
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Per run: N, and its curve's log C, log loss and log D sorted by C (duplicates of a C averaged)."""
    Ns, lc, ll, ld, ids = [], [], [], [], []
    for rid, g in table.groupby("run_id", sort=True):
        g = g.groupby("C", as_index=False)[["N", "D", "loss"]].mean().sort_values("C")
        Ns.append(float(g["N"].iloc[0]))
        lc.append(np.log(g["C"].to_numpy(float)))
        ll.append(np.log(g["loss"].to_numpy(float)))
        ld.append(np.log(g["D"].to_numpy(float)))
        ids.append(rid)
    return np.asarray(Ns), lc, ll, ld, np.asarray(ids)


def _grid(logc: list[np.ndarray], single: bool, n: int) -> np.ndarray:
    """Log-spaced computes covered by the runs; the runs' own computes when every run has one point."""
    if single:
        return np.unique(np.concatenate(logc))
    return np.linspace(min(c.min() for c in logc), max(c.max() for c in logc), n)


def _read(lc: np.ndarray, v: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """A curve read at the grid's computes: NaN outside the run's range."""
    out = np.full(len(grid), np.nan)
    inside = (grid >= lc[0] - 1e-12) & (grid <= lc[-1] + 1e-12)
    out[inside] = np.interp(grid[inside], lc, v) if len(lc) > 1 else v[0]
    return out


def _minimisers(
    sizes: np.ndarray, L: np.ndarray, Dm: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log N_opt, log D_opt, log L_min at each grid column of (size, grid) matrices of log loss / log D (NaN:
    the size does not reach that compute); NaN where the minimum is not bracketed."""
    x = np.log(sizes)
    n_grid = L.shape[1]
    out = np.full((3, n_grid), np.nan)
    for g in range(n_grid):
        ok = np.flatnonzero(np.isfinite(L[:, g]))
        if len(ok) < 3:
            continue
        k = int(np.argmin(L[ok, g]))
        if k == 0 or k == len(ok) - 1:
            continue
        i0, i1, i2 = ok[k - 1 : k + 2]
        xs, ys = x[[i0, i1, i2]], L[[i0, i1, i2], g]
        c2, c1, c0 = np.polyfit(xs, ys, 2)
        xv = -c1 / (2 * c2) if c2 > 0 else xs[1]
        xv = float(np.clip(xv, xs[0], xs[2]))  # the middle point is lowest, so the vertex lies between
        j = 0 if xv <= xs[1] else 1
        t = (xv - xs[j]) / (xs[j + 1] - xs[j])
        dv = (1 - t) * Dm[[i0, i1, i2][j], g] + t * Dm[[i0, i1, i2][j + 1], g]
        out[:, g] = (xv, dv, c0 + c1 * xv + c2 * xv * xv)
    return out[0], out[1], out[2]


def _by_size(Ns: np.ndarray, Lg: np.ndarray, Dg: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each size's best run at every compute, among the runs with a positive weight."""
    sizes = np.unique(Ns[weight > 0])
    L = np.full((len(sizes), Lg.shape[1]), np.nan)
    D = np.full_like(L, np.nan)
    for s, n in enumerate(sizes):
        rows = np.flatnonzero((Ns == n) & (weight > 0))
        block = Lg[rows]
        with np.errstate(all="ignore"):
            best = np.where(np.isfinite(block), block, np.inf).argmin(axis=0)
        L[s] = block[best, np.arange(block.shape[1])]
        D[s] = Dg[rows][best, np.arange(block.shape[1])]
    return sizes, L, D


def envelope(
    curves: Any, *, n_grid: int = GRID, n_boot: int = 1000, seed: int = 0, level: float = LEVEL
) -> tuple[list[dict[str, float]], Exponent | None, list[str]]:
    """Approach 1 on a table of evaluation points (run_id, N, D, C, loss; several rows per run for curves):
    the envelope's minimisers on the compute grid (C, N_opt, D_opt, loss) and the exponents over the
    bracketed computes, with bootstrap-over-runs intervals; None and a warning with fewer than two
    bracketed computes."""
    Ns, lc, ll, ld, _ = _curves(curves)
    single = all(len(c) == 1 for c in lc)
    grid = _grid(lc, single, n_grid)
    Lg = np.stack([_read(c, v, grid) for c, v in zip(lc, ll, strict=True)])
    Dg = np.stack([_read(c, v, grid) for c, v in zip(lc, ld, strict=True)])
    xn, xd, xl = _minimisers(*_by_size(Ns, Lg, Dg, np.ones(len(Ns))))
    ok = np.isfinite(xn)
    points = [
        {"C": math.exp(grid[g]), "N_opt": math.exp(xn[g]), "D_opt": math.exp(xd[g]), "loss": math.exp(xl[g])}
        for g in np.flatnonzero(ok)
    ]
    if ok.sum() < 2 or np.ptp(grid[ok]) == 0:
        return points, None, [f"approach 1: {int(ok.sum())} compute(s) with a bracketed envelope minimum"]
    rng = np.random.default_rng(seed)
    boot_n = np.full((n_boot, int(ok.sum())), np.nan)
    boot_d = np.full_like(boot_n, np.nan)
    for b in range(n_boot):
        w = np.bincount(rng.integers(0, len(Ns), len(Ns)), minlength=len(Ns))
        bn, bd, _ = _minimisers(*_by_size(Ns, Lg, Dg, w))
        # A compute a resample does not bracket is dropped from that resample's slope, not the resample.
        boot_n[b], boot_d[b] = bn[ok], bd[ok]
    exp = _slopes_with_gaps(grid[ok], xn[ok], xd[ok], boot_n, boot_d, level)
    return points, exp, []


def _slopes_with_gaps(
    logC: np.ndarray, logN: np.ndarray, logD: np.ndarray, boot_n: np.ndarray, boot_d: np.ndarray, level: float
) -> Exponent:
    """The exponents, and intervals from each resample's slope over the computes it brackets."""
    point = fit_exponent("approach1", logC, logN, logD)
    a_s, b_s = [], []
    for yn, yd in zip(boot_n, boot_d, strict=True):
        m = np.isfinite(yn) & np.isfinite(yd)
        if m.sum() >= 2 and np.ptp(logC[m]) > 0:
            a_s.append(np.polyfit(logC[m], yn[m], 1)[0])
            b_s.append(np.polyfit(logC[m], yd[m], 1)[0])
    q = [50 * (1 - level), 50 * (1 + level)]
    lo, hi = np.percentile(a_s, q) if len(a_s) > 1 else (None, None)
    b_lo, b_hi = np.percentile(b_s, q) if len(b_s) > 1 else (None, None)
    note = f"envelope of {len(logC)} bracketed computes; bootstrap over runs"
    return Exponent(
        "approach1", point.a, _f(lo), _f(hi), point.b, _f(b_lo), _f(b_hi), point.kN, point.kD, len(logC),
        len(boot_n), len(a_s), level, None, note,
    )  # fmt: skip


def _f(v: Any) -> float | None:
    return None if v is None else float(v)
