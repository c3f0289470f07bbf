"""Bootstrap over runs: percentile intervals for every parameter and for derived quantities.

Runs, not checkpoints or rows, are resampled (intermediate checkpoints of one run are correlated, so
resampling them gives over-confident intervals). A table row belongs to the run named in ``groups_col``;
tables without that column treat every row as its own run (e.g. the Chinchilla data).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from florenz_scaling.fit.result import LAW_PARAMS, BootstrapSummary, FitResult

FitFn = Callable[[Any], FitResult]


def fitter(law: str, **kwargs: Any) -> FitFn:
    """A function ``table -> FitResult`` for ``law`` on a points table (columns N, D, C, loss)."""
    from florenz_scaling.fit.chinchilla import fit_chinchilla, fit_saturating_compute
    from florenz_scaling.fit.laws import fit_compute, fit_size_data

    def fn(t: Any) -> FitResult:
        L = t["loss"].to_numpy(float)
        if law == "compute":
            return fit_compute(t["C"].to_numpy(float), L, **kwargs)
        if law == "size-data":
            return fit_size_data(t["N"].to_numpy(float), t["D"].to_numpy(float), L, **kwargs)
        if law == "chinchilla":
            return fit_chinchilla(t["N"].to_numpy(float), t["D"].to_numpy(float), L, **kwargs)
        if law == "saturating-compute":
            return fit_saturating_compute(t["C"].to_numpy(float), L, **kwargs)
        raise ValueError(f"unknown law {law!r}")

    fn.law = law  # type: ignore[attr-defined]
    return fn


def resample_fitter(point: FitResult, *, n_warm: int = 4, **kwargs: Any) -> FitFn:
    """The per-resample fit used when ``bootstrap`` is given a law name.

    For the LSE/Huber laws a 4,500-start grid per resample would cost ~1 s each (1,000 resamples: too slow).
    Each resample is instead polished (L-BFGS-B to its floor) from the ``n_warm`` best distinct local optima
    that the full-data fit found from its whole grid: a resample's optimum lies in one of the valleys the full
    data has. Checked in the tests against a full-grid fit on resamples (same objective).
    """
    law = point.law
    method = point.method
    if law in ("chinchilla", "saturating-compute"):
        # Resamples are fitted with the full fit's objective, or the intervals would describe another fit.
        kwargs = {"objective": point.solver.get("objective", "huber-log"), **kwargs}
    if law in ("chinchilla", "saturating-compute") and method == "lbfgs":
        optima = point.solver.get("local_optima") or [{"theta": list(point.solver["theta"].values())}]
        grid = np.array([o["theta"] for o in optima[:n_warm]], dtype=float)
        kw = {"init_grid": grid, "screen": False, **kwargs}
        return fitter(law, method="lbfgs", **kw)
    if method == "varpro":
        # A coarse exponent grid plus the full-data exponents as an extra candidate, then Nelder-Mead.
        init = [point.params["alpha"]] + ([point.params["beta"]] if law == "chinchilla" else [])
        return fitter(law, method="varpro", varpro_grid=10, varpro_init=init, **kwargs)
    return fitter(law, **kwargs)


def derived(result: FitResult, budgets: Sequence[float] | None) -> dict[str, float]:
    """Derived quantities of one fit: exponent ratio and compute-optimal N*, D*, L* (Chinchilla); L(C) at the
    budgets (compute laws)."""
    from florenz_scaling.fit.chinchilla import compute_optimal

    out: dict[str, float] = {}
    p = result.params
    if result.law == "chinchilla":
        s = p["alpha"] + p["beta"]
        out["beta_over_alpha_plus_beta"] = p["beta"] / s if s > 0 else float("nan")
        for c in budgets or ():
            with np.errstate(all="ignore"):
                co = compute_optimal(result, c) if p["alpha"] > 0 and p["beta"] > 0 else None
            for k in ("N_opt", "D_opt", "L_opt"):
                out[f"{k}@{c:.6g}"] = float(co[k]) if co is not None else float("nan")
    elif result.law in ("compute", "saturating-compute"):
        for c in budgets or ():
            out[f"L@{c:.6g}"] = float(result.predict(C=c))
    return out


def bootstrap(
    fit_fn: FitFn | str,
    table: Any,
    *,
    groups_col: str = "run_id",
    n: int = 1000,
    seed: int = 0,
    budgets: Sequence[float] | None = None,
    level: float = 0.95,
    point: FitResult | None = None,
) -> FitResult:
    """Refit ``n`` resamples of runs; return the full-data fit with percentile CIs in ``ci``.

    ``fit_fn`` is a function ``table -> FitResult`` or a law name (then ``resample_fitter`` is used per
    resample, see there). The result's ``bootstrap`` (a ``BootstrapSummary``) holds the settings, the number
    of failed resamples, and the percentile intervals and medians of the derived quantities (``derived``) at
    ``budgets``; for the OLS laws the analytic t intervals stay in ``extras["ols_ci"]``.
    """
    import pandas as pd

    table = pd.DataFrame(table).reset_index(drop=True)
    if isinstance(fit_fn, str):
        full_fn = fitter(fit_fn, method="auto") if fit_fn == "chinchilla" else fitter(fit_fn)
        point = point or full_fn(table)
        per_resample = resample_fitter(point)
    else:
        point = point or fit_fn(table)
        per_resample = fit_fn
    runs = table[groups_col].to_numpy() if groups_col in table.columns else np.arange(len(table))
    ids, inverse = np.unique(runs.astype(str), return_inverse=True)
    rows_of = [np.flatnonzero(inverse == k) for k in range(len(ids))]
    rng = np.random.default_rng(seed)
    names = LAW_PARAMS[point.law]
    samples: dict[str, list[float]] = {k: [] for k in names}
    dsamples: dict[str, list[float]] = {}
    failures: list[str] = []
    for _ in range(n):
        pick = rng.integers(0, len(ids), len(ids))
        idx = np.concatenate([rows_of[k] for k in pick])
        try:
            r = per_resample(table.iloc[idx])
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as e:
            failures.append(f"{type(e).__name__}: {e}")
            continue
        for k in names:
            samples[k].append(r.params[k])
        for k, v in derived(r, budgets).items():
            dsamples.setdefault(k, []).append(v)
    lo_q, hi_q = 50 * (1 - level), 50 * (1 + level)
    ci: dict[str, list[float]] = {}
    for k, v in samples.items():
        if v:
            ci[k] = np.nanpercentile(v, [lo_q, hi_q]).tolist()
    dsum = {}
    for k, v in dsamples.items():
        a = np.asarray(v, dtype=float)
        if np.isfinite(a).any():
            dsum[k] = {"ci": np.nanpercentile(a, [lo_q, hi_q]).tolist(), "median": float(np.nanmedian(a))}
    summary = BootstrapSummary(
        n_resamples=n,
        n_ok=len(samples[names[0]]),
        n_failed=len(failures),
        failures=failures[:5],
        seed=seed,
        level=level,
        unit=groups_col if groups_col in table.columns else "row",
        n_runs=len(ids),
        interval="percentile",
        per_resample_fit=(
            "polished from the full fit's best local optima (see resample_fitter)"
            if isinstance(fit_fn, str)
            else getattr(fit_fn, "__name__", "custom")
        ),
        param_median={k: float(np.median(v)) for k, v in samples.items() if v},
        derived_point=derived(point, budgets),
        derived=dsum,
    )
    extras = dict(point.extras)
    if point.law in ("compute", "size-data"):
        extras["ols_ci"] = point.ci  # the analytic t intervals stay available next to the bootstrap ones
    return point.replace(ci=ci, bootstrap=summary, extras=extras)
