"""Bootstrap over runs: percentile intervals for every parameter and for derived quantities.

Runs, not checkpoints or rows, are resampled (intermediate checkpoints of one run are correlated, so
resampling them gives over-confident intervals). A table row belongs to the run named in ``groups_col``;
tables without that column treat every row as its own run (e.g. the Chinchilla data).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from florenz_scaling.fit.laws import get_law
from florenz_scaling.fit.result import BootstrapSummary, FitResult

FitFn = Callable[[Any], FitResult]


def fitter(law: str, **kwargs: Any) -> FitFn:
    """A function ``table -> FitResult`` for ``law`` on a points table (columns: the law's inputs, loss)."""
    return get_law(law).fitter(**kwargs)


def resample_fitter(point: FitResult, **kwargs: Any) -> FitFn:
    """The per-resample fit used when ``bootstrap`` is given a law name.

    For the multistart laws a full start grid per resample would cost ~1 s each (1,000 resamples: too slow).
    Each resample is instead polished (L-BFGS-B to its floor) from the best distinct local optima that the
    full-data fit found from its whole grid: a resample's optimum lies in one of the valleys the full data
    has. Checked in the tests against a full-grid fit on resamples (same objective). The law decides
    (``Law.resample_fitter``); the OLS laws refit exactly.
    """
    return get_law(point.law).resample_fitter(point, **kwargs)


def law_refits(
    point: FitResult,
    table: Any,
    groups_col: str,
    n: int,
    seed: int,
    failures: list[str],
    *,
    batched: bool = True,
    alone: list[int] | None = None,
) -> tuple[int, Iterator[Any]]:
    """The number of runs and the law's refits of ``n`` resamples of runs around the full fit ``point``: all
    at once where the law can (``Law.batch_refitter``) and ``batched``, else one by one
    (``resample_fitter``); the same resamples either way. Each refit has ``params``."""
    law = get_law(point.law)
    batch = law.batch_refitter(point) if batched else None
    if batch is not None:
        n_runs, chunks = resample_weights(table, groups_col, n, seed)
        return n_runs, batch_refits(batch, point.law, table, chunks, failures, [] if alone is None else alone)
    n_runs, picks = resamples(table, groups_col, n, seed)
    return n_runs, refits(law.resample_fitter(point), table, picks, failures)


def derived(result: FitResult, budgets: Sequence[float] | None) -> dict[str, float]:
    """Derived quantities of one fit (``Law.derived``): exponent ratio and compute-optimal N*, D*, L* (laws of
    N and D); L(C) at the budgets (laws of C alone)."""
    return get_law(result.law).derived(result, budgets)


def _runs(table: Any, groups_col: str) -> tuple[int, np.ndarray]:
    """The number of runs and each row's run index."""
    runs = table[groups_col].to_numpy() if groups_col in table.columns else np.arange(len(table))
    ids, inverse = np.unique(runs.astype(str), return_inverse=True)
    return len(ids), inverse


def resamples(table: Any, groups_col: str, n: int, seed: int) -> tuple[int, Iterator[np.ndarray]]:
    """The number of runs and ``n`` resamples of runs, each as the row indices of ``table`` it draws."""
    n_ids, inverse = _runs(table, groups_col)
    rows_of = [np.flatnonzero(inverse == k) for k in range(n_ids)]
    rng = np.random.default_rng(seed)

    def draw() -> Iterator[np.ndarray]:
        for _ in range(n):
            pick = rng.integers(0, n_ids, n_ids)
            yield np.concatenate([rows_of[k] for k in pick])

    return n_ids, draw()


def resample_weights(
    table: Any, groups_col: str, n: int, seed: int, *, max_cells: int = 250_000
) -> tuple[int, Iterator[np.ndarray]]:
    """The same ``n`` resamples as ``resamples`` (same seed, same draws), as weights over the rows of
    ``table`` (how often each row's run was drawn), in chunks of at most ``max_cells`` weights (a batched
    refit holds a few arrays of that many cells per parameter and start: ~40 MB each for Chinchilla)."""
    n_ids, inverse = _runs(table, groups_col)
    rng = np.random.default_rng(seed)
    per_chunk = max(1, max_cells // max(len(inverse), 1))

    def draw() -> Iterator[np.ndarray]:
        for start in range(0, n, per_chunk):
            picks = [rng.integers(0, n_ids, n_ids) for _ in range(min(per_chunk, n - start))]
            yield np.stack([np.bincount(p, minlength=n_ids)[inverse] for p in picks]).astype(float)

    return n_ids, draw()


def refits(fn: FitFn, table: Any, picks: Iterator[np.ndarray], failures: list[str]) -> Iterator[FitResult]:
    """``fn`` on each resample; a resample the law cannot be fitted to is recorded in ``failures``."""
    for idx in picks:
        try:
            yield fn(table.iloc[idx])
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as e:
            failures.append(f"{type(e).__name__}: {e}")


@dataclass(frozen=True)
class Draw:
    """One resample's parameters from a batched refit (what ``derived`` reads of a fit)."""

    law: str
    params: dict[str, float]


def batch_refits(
    refit: Callable[[Any, np.ndarray], tuple[dict[str, Any], int]],
    law: str,
    table: Any,
    chunks: Iterator[np.ndarray],
    failures: list[str],
    alone: list[int],
) -> Iterator[Draw]:
    """The law's batched refit (``Law.batch_refitter``) on each chunk of resample weights; a resample with
    fewer rows than parameters or a non-finite optimum is recorded in ``failures``, as one by one."""
    n_par = get_law(law).n_params
    for W in chunks:
        params, n_alone = refit(table, W)
        alone.append(n_alone)
        for b in range(len(W)):
            row = {k: float(v[b]) for k, v in params.items()}
            if W[b].sum() < n_par:
                failures.append(f"ValueError: {int(W[b].sum())} points cannot determine {n_par} coefficients")
            elif not all(np.isfinite(list(row.values()))):
                failures.append("FloatingPointError: non-finite optimum")
            else:
                yield Draw(law, row)


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
    batched: bool = True,
) -> FitResult:
    """Refit ``n`` resamples of runs; return the full-data fit with percentile CIs in ``ci``.

    ``fit_fn`` is a function ``table -> FitResult`` or a law name: then, where the law has one
    (``Law.batch_refitter``) and ``batched``, its refit of all resamples at once (the same resamples and,
    tested, the same optima as one by one, far faster), else ``resample_fitter`` per resample. The result's
    ``bootstrap`` (a ``BootstrapSummary``) holds the settings, the number of failed resamples, and the
    percentile intervals and medians of the derived quantities (``derived``) at ``budgets``; for the OLS
    laws the analytic t intervals stay in ``extras["ols_ci"]``.
    """
    import pandas as pd

    table = pd.DataFrame(table).reset_index(drop=True)
    if isinstance(fit_fn, str):
        point = point or get_law(fit_fn).full_fitter()(table)
    else:
        point = point or fit_fn(table)
    names = get_law(point.law).param_names
    by_law = isinstance(fit_fn, str)
    batch = by_law and batched and get_law(point.law).batch_refitter(point) is not None
    failures: list[str] = []
    alone: list[int] = []
    draws: Iterator[Any]
    if by_law:
        n_runs, draws = law_refits(point, table, groups_col, n, seed, failures, batched=batched, alone=alone)
    else:
        n_runs, picks = resamples(table, groups_col, n, seed)
        draws = refits(fit_fn, table, picks, failures)  # type: ignore[arg-type]
    samples: dict[str, list[float]] = {k: [] for k in names}
    dsamples: dict[str, list[float]] = {}
    for r in draws:
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
        n_runs=n_runs,
        interval="percentile",
        per_resample_fit=(
            f"all resamples at once: batched exact Newton from the full fit's best local optima "
            f"({sum(alone)} polished alone by L-BFGS-B)"
            if batch
            else "polished from the full fit's best local optima (see resample_fitter)"
            if by_law
            else getattr(fit_fn, "__name__", "custom")
        ),
        param_median={k: float(np.median(v)) for k, v in samples.items() if v},
        derived_point=derived(point, budgets),
        derived=dsum,
    )
    extras = dict(point.extras)
    if get_law(point.law).linear_in_logs:
        extras["ols_ci"] = point.ci  # the analytic t intervals stay available next to the bootstrap ones
    return point.replace(ci=ci, bootstrap=summary, extras=extras)
