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
CHUNK = 256  # resamples at once (arrays of resamples × runs × grid)


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
    """log N_opt, log D_opt, log L_min at each grid column of (..., size, grid) arrays of log loss / log D
    (NaN: the size does not reach that compute, or is not in this resample); NaN where the minimum is not
    bracketed. Leading axes are resamples: every column of every resample at once."""
    x = np.log(sizes)
    n_sizes = L.shape[-2]
    reached = np.isfinite(L)
    k = np.where(reached, L, np.inf).argmin(axis=-2)[..., None, :]  # the first lowest reached size
    rows = np.arange(n_sizes)[:, None]
    i0 = np.where(reached & (rows < k), rows, -1).max(axis=-2)  # its reached neighbours in log N
    i2 = np.where(reached & (rows > k), rows, n_sizes).min(axis=-2)
    ok = (i0 >= 0) & (i2 < n_sizes)
    i0, i1, i2 = np.where(ok, i0, 0), k[..., 0, :], np.where(ok, i2, 0)

    def at(a: np.ndarray, i: np.ndarray) -> np.ndarray:
        return np.take_along_axis(a, i[..., None, :], axis=-2)[..., 0, :]

    x0, x1, x2 = x[i0], x[i1], x[i2]
    y0, y1, y2 = at(L, i0), at(L, i1), at(L, i2)
    with np.errstate(all="ignore"):
        # The parabola through the three points in Newton's form (exact for three points).
        d01 = (y1 - y0) / (x1 - x0)
        c2 = ((y2 - y1) / (x2 - x1) - d01) / (x2 - x0)
        xv = np.where(c2 > 0, 0.5 * (x0 + x1) - d01 / (2 * c2), x1)
        xv = np.clip(xv, x0, x2)  # the middle point is lowest, so the vertex lies between
        lv = y0 + d01 * (xv - x0) + c2 * (xv - x0) * (xv - x1)
        right = xv > x1
        xa, xb = np.where(right, x1, x0), np.where(right, x2, x1)
        da = np.where(right, at(Dm, i1), at(Dm, i0))
        db = np.where(right, at(Dm, i2), at(Dm, i1))
        t = (xv - xa) / (xb - xa)
        dv = (1 - t) * da + t * db
    nan = np.full(ok.shape, np.nan)
    return np.where(ok, xv, nan), np.where(ok, dv, nan), np.where(ok, lv, nan)


def _by_size(Ns: np.ndarray, Lg: np.ndarray, Dg: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each size's best run at every compute, among the runs with a positive weight: (resample, size, grid)
    arrays for (resample, run) weights; a size with no such run is NaN (not reached)."""
    sizes = np.unique(Ns)
    active = weight > 0
    L = np.full((len(weight), len(sizes), Lg.shape[1]), np.nan)
    D = np.full_like(L, np.nan)
    for s, n in enumerate(sizes):
        rows = np.flatnonzero(Ns == n)
        block = np.where(active[:, rows, None] & np.isfinite(Lg[rows])[None], Lg[rows][None], np.inf)
        best = block.argmin(axis=1)[:, None, :]
        low = np.take_along_axis(block, best, axis=1)[:, 0, :]
        d = np.take_along_axis(np.broadcast_to(Dg[rows][None], block.shape), best, axis=1)[:, 0, :]
        L[:, s] = np.where(np.isfinite(low), low, np.nan)
        D[:, s] = np.where(np.isfinite(low), d, np.nan)
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
    xn, xd, xl = (v[0] for v in _minimisers(*_by_size(Ns, Lg, Dg, np.ones((1, len(Ns))))))
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
    for b0 in range(0, n_boot, CHUNK):
        # Draws as one resample at a time would make them (the generator's stream is the same).
        picks = rng.integers(0, len(Ns), (min(CHUNK, n_boot - b0), len(Ns)))
        w = (picks[:, :, None] == np.arange(len(Ns))).sum(axis=1)
        bn, bd, _ = _minimisers(*_by_size(Ns, Lg, Dg, w))
        # A compute a resample does not bracket is dropped from that resample's slope, not the resample.
        boot_n[b0 : b0 + len(w)], boot_d[b0 : b0 + len(w)] = bn[:, ok], bd[:, ok]
    exp = _slopes_with_gaps(grid[ok], xn[ok], xd[ok], boot_n, boot_d, level)
    return points, exp, []


def _slopes_with_gaps(
    logC: np.ndarray, logN: np.ndarray, logD: np.ndarray, boot_n: np.ndarray, boot_d: np.ndarray, level: float
) -> Exponent:
    """The exponents, and intervals from each resample's slope over the computes it brackets."""
    point = fit_exponent("approach1", logC, logN, logD)
    a_s, b_s = _masked_slopes(logC, boot_n, boot_d)
    q = [50 * (1 - level), 50 * (1 + level)]
    lo, hi = np.percentile(a_s, q) if len(a_s) > 1 else (None, None)
    b_lo, b_hi = np.percentile(b_s, q) if len(b_s) > 1 else (None, None)
    note = f"envelope of {len(logC)} bracketed computes; bootstrap over runs"
    return Exponent(
        "approach1", point.a, _f(lo), _f(hi), point.b, _f(b_lo), _f(b_hi), point.kN, point.kD, len(logC),
        len(boot_n), len(a_s), level, None, note,
    )  # fmt: skip


def _masked_slopes(x: np.ndarray, yn: np.ndarray, yd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each resample's least-squares slopes of its rows of ``yn`` and ``yd`` against ``x``, over the columns
    where both are finite; resamples with fewer than two distinct such x are left out."""
    m = np.isfinite(yn) & np.isfinite(yd)
    n = m.sum(axis=1)
    spread = np.where(m, x, -np.inf).max(axis=1) - np.where(m, x, np.inf).min(axis=1)
    use = (n >= 2) & (spread > 0)
    m, n = m[use], n[use, None]
    xc = np.where(m, x - (m * x).sum(axis=1, keepdims=True) / n, 0.0)
    sxx = (xc * xc).sum(axis=1)

    def slope(y: np.ndarray) -> np.ndarray:
        return (xc * np.where(m, y[use], 0.0)).sum(axis=1) / sxx

    return slope(yn), slope(yd)


def _f(v: Any) -> float | None:
    return None if v is None else float(v)
