"""Joint fits over groups: shared exponent(s), per-group coefficients, and a test of shared vs separate.

Fernandes et al. (ICML 2023) found that in multilingual models the data mixture moves only the multiplier of
a scaling law, not its exponent; "do UC and SC scale alike?" is then the test of one shared exponent against
one per group.

- OLS laws (``compute``: log10 L = α0[g] + α1·log10 C on each group's Pareto frontier; ``size-data``:
  log10 L = β0[g] + β1·log10 P + β2·log10 S): one regression with a per-group intercept, Student-t intervals,
  and the F-test of the nested models (the separate model adds a slope per group). Exact under Gaussian
  errors; checked against statsmodels in the tests.
- Non-linear laws (``chinchilla``, ``saturating-compute``): shared α (and β), per-group E, A (and B), fitted
  together with the same LSE parameters and objective as the single-group fits; intervals by bootstrap over
  runs (a run gives one point in every group, so the groups are resampled together); the likelihood-ratio
  test n·log(RSS_shared / RSS_separate) ~ χ²(q), with RSS of the objective's residuals (log residuals for
  huber-log, raw loss for mse-raw). For huber-log this is the Gaussian LR evaluated at robust estimates: an
  approximation, said so in ``test["method"]``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from florenz_scaling.fit.laws import get_law
from florenz_scaling.fit.result import jsonable


@dataclass(frozen=True)
class JointFit:
    """A joint fit: ``shared`` and ``per_group`` parameters as {name: {"value", "ci", ...}}, ``separate``
    the exponents each group gets alone, and ``test`` = {statistic, df, p_value, method} of shared vs
    separate exponents (small p: the groups do not share the exponent)."""

    law: str
    groups: list[str]
    shared: dict[str, dict[str, Any]]
    per_group: dict[str, dict[str, dict[str, Any]]]
    separate: dict[str, dict[str, dict[str, Any]]]
    test: dict[str, Any]
    n_points: dict[str, int] = field(default_factory=dict)
    method: str = ""
    objective: str = ""
    warnings: list[str] = field(default_factory=list)
    kind: str = "joint"  # tells fits/joint-*.json apart from single fits (see io.load_fits)

    def __post_init__(self) -> None:
        for name in ("shared", "per_group", "separate", "test", "n_points"):
            object.__setattr__(self, name, jsonable(getattr(self, name)))

    def to_json(self) -> str:
        """JSON text (full-precision floats; non-finite values as null)."""
        return json.dumps(asdict(self), indent=2, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> JointFit:
        """Inverse of ``to_json``."""
        d = json.loads(text)
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def shares_exponent(self, level: float = 0.05) -> bool | None:
        """True when the test does not reject a shared exponent at ``level``; None without a test."""
        p = self.test.get("p_value")
        return None if p is None else bool(p >= level)


def _param(value: float, ci: Any = None, **more: Any) -> dict[str, Any]:
    return {"value": float(value), "ci": None if ci is None else [float(ci[0]), float(ci[1])], **more}


def _groups_of(points: Any, groups: list[str] | None) -> list[str]:
    if "group" not in points.columns:
        raise ValueError("a joint fit needs a 'group' column next to N, D, C, loss")
    present = [g for g in dict.fromkeys(points["group"].astype(str)) if g and g != "nan"]
    chosen = present if groups is None else [g for g in groups if g]
    missing = [g for g in chosen if g not in present]
    if missing:
        raise ValueError(f"no points for group(s) {', '.join(missing)}; the input has {', '.join(present)}")
    if len(chosen) < 2:
        raise ValueError(f"a joint fit needs at least 2 groups; got {', '.join(chosen) or 'none'}")
    return chosen


# ---- OLS laws: per-group intercepts, shared slopes; F-test ------------------------------------------------
def _ols_data(points: Any, law: str, groups: list[str], frontier_only: bool) -> tuple[list, list[str]]:
    from florenz_scaling.fit.laws import pareto_frontier

    found = get_law(law)
    blocks = []
    for g in groups:
        t = points[points["group"].astype(str) == g]
        L = t["loss"].to_numpy(float)
        cols = list(found.columns(t).values())
        if found.frontier:  # the law is fitted on the Pareto frontier of its one input (Eq. 1)
            keep = pareto_frontier(cols[0], L) if frontier_only else np.ones(len(L), dtype=bool)
        else:
            keep = np.ones(len(L), dtype=bool)
        X = np.column_stack([np.log10(c[keep]) for c in cols])
        blocks.append((X, np.log10(L[keep])))
    slopes = list(found.param_names[1:])
    return blocks, slopes


def _ols_design(blocks: list, shared: bool) -> np.ndarray:
    """Per-group intercept columns, then the slopes: shared (one set) or one set per group."""
    n = sum(len(y) for _, y in blocks)
    G, k = len(blocks), blocks[0][0].shape[1]
    D = np.zeros((n, G + (k if shared else G * k)))
    row = 0
    for g, (X, y) in enumerate(blocks):
        rows = slice(row, row + len(y))
        D[rows, g] = 1.0
        cols = slice(G, G + k) if shared else slice(G + g * k, G + (g + 1) * k)
        D[rows, cols] = X
        row += len(y)
    return D


def f_test(rss0: float, df0: int, rss1: float, df1: int) -> dict[str, Any]:
    """F-test of a restricted model (rss0, df0 residual degrees of freedom) nested in a full one."""
    from scipy import stats

    q = df0 - df1
    if q <= 0 or df1 <= 0:
        return {"statistic": None, "df": [q, df1], "p_value": None, "method": "F-test (undefined: no dof)"}
    F = ((rss0 - rss1) / q) / (rss1 / df1) if rss1 > 0 else float("inf")
    return {
        "statistic": float(F),
        "df": [int(q), int(df1)],
        "p_value": float(stats.f.sf(F, q, df1)),
        "method": "F-test of nested OLS models (shared vs per-group slopes)",
    }


def fit_joint_ols(
    points: Any, law: str, groups: list[str] | None = None, *, frontier_only: bool = True, level: float = 0.95
) -> JointFit:
    """Joint compute or size-data law: per-group intercepts, shared slope(s), t intervals and the F-test."""
    from florenz_scaling.fit.laws import ols

    groups = _groups_of(points, groups)
    blocks, slopes = _ols_data(points, law, groups, frontier_only)
    intercept = get_law(law).param_names[0]
    y = np.concatenate([b[1] for b in blocks])
    names0 = tuple(f"{intercept}[{g}]" for g in groups) + tuple(slopes)
    names1 = tuple(f"{intercept}[{g}]" for g in groups) + tuple(f"{s}[{g}]" for g in groups for s in slopes)
    shared_fit = ols(y, _ols_design(blocks, True), names0, level)
    sep_fit = ols(y, _ols_design(blocks, False), names1, level)
    if "ci" not in shared_fit or "ci" not in sep_fit:
        raise ValueError(f"{len(y)} points leave no residual degrees of freedom for a joint {law} fit")

    def entry(fit: dict, name: str) -> dict[str, Any]:
        return _param(
            fit["coef"][name], fit["ci"][name], stderr=fit["stderr"][name], pvalue=fit["pvalues"][name]
        )

    return JointFit(
        law=law,
        groups=groups,
        shared={s: entry(shared_fit, s) for s in slopes},
        per_group={g: {intercept: entry(shared_fit, f"{intercept}[{g}]")} for g in groups},
        separate={g: {s: entry(sep_fit, f"{s}[{g}]") for s in slopes} for g in groups},
        test=f_test(shared_fit["rss"], shared_fit["df"], sep_fit["rss"], sep_fit["df"]),
        n_points={g: len(b[1]) for g, b in zip(groups, blocks, strict=True)},
        method="ols",
        objective="least squares of log10 L",
        warnings=[] if shared_fit["df"] >= 3 else [f"only {shared_fit['df']} residual degrees of freedom"],
    )


# ---- non-linear laws: shared exponents, per-group E, A (B); likelihood ratio ------------------------------
def _problems(points: Any, law: str, groups: list[str], objective: str, weights: Any = None) -> list:
    from florenz_scaling.fit._optim import LSEProblem

    cols = get_law(law).inputs
    out = []
    for g in groups:
        t = points[points["group"].astype(str) == g]
        X = np.column_stack([np.log(t[c].to_numpy(float)) for c in cols])
        w = None if weights is None else np.asarray(weights[g], dtype=float)
        out.append(LSEProblem(X, np.log(t["loss"].to_numpy(float)), weights=w, objective=objective))
    return out


def _split(theta: np.ndarray, G: int, m: int) -> list[np.ndarray]:
    """Each group's LSE vector (a…, e, α…) from the joint one (per group a…, e; then the shared α…)."""
    exps = theta[G * (m + 1) :]
    return [np.concatenate([theta[g * (m + 1) : (g + 1) * (m + 1)], exps]) for g in range(G)]


def _joint_polish(problems: list, starts: list[np.ndarray], m: int, deep: bool = True) -> Any:
    from scipy.optimize import minimize

    from florenz_scaling.fit.chinchilla import lse_bounds

    G = len(problems)

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        f, grad = 0.0, np.zeros_like(theta)
        for g, (pr, th) in enumerate(zip(problems, _split(theta, G, m), strict=True)):
            fg, gg = pr.scalar(th)
            f += fg
            grad[g * (m + 1) : (g + 1) * (m + 1)] = gg[: m + 1]
            grad[G * (m + 1) :] += gg[m + 1 :]
        return f, grad

    lo, hi = [], []
    for pr in problems:
        lo_g, hi_g = lse_bounds(m, float(np.exp(pr.logL).min()))
        lo += list(lo_g[: m + 1])
        hi += list(hi_g[: m + 1])
    lo_g, hi_g = lse_bounds(m, 1.0)
    bounds = list(zip(lo + list(lo_g[m + 1 :]), hi + list(hi_g[m + 1 :]), strict=True))
    # To the floor for the point estimate (see _optim.polish); the recipe's tolerances per resample.
    ftol, gtol = (0.0, 1e-14) if deep else (1e-12, 1e-10)
    opts = {"ftol": ftol, "gtol": gtol, "maxiter": 10_000, "maxfun": 20_000}
    runs = [
        minimize(
            fun, np.clip(s, *np.array(bounds).T), jac=True, method="L-BFGS-B", bounds=bounds, options=opts
        )
        for s in starts
    ]
    return min(runs, key=lambda r: r.fun)


def _rss(problem: Any, theta: np.ndarray) -> float:
    """Sum of squared residuals in the objective's space at theta (weights as multiplicities)."""
    m = problem.m
    s = np.exp(theta[m]) + sum(np.exp(theta[j] - theta[m + 1 + j] * problem.X[:, j]) for j in range(m))
    r = s - np.exp(problem.logL) if problem.objective == "mse-raw" else np.log(s) - problem.logL
    return float(np.sum(problem.w * r * r))


def fit_joint_nonlinear(
    points: Any,
    law: str,
    groups: list[str] | None = None,
    *,
    objective: str = "huber-log",
    bootstrap: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> JointFit:
    """Joint Chinchilla or saturating-compute law: shared exponents, per-group coefficients; bootstrap
    intervals over runs and the likelihood-ratio test of shared vs separate exponents."""
    from scipy import stats

    from florenz_scaling.fit.chinchilla import E_ZERO

    groups = _groups_of(points, groups)
    found = get_law(law)
    exps, coefs = found.exponents, found.coefs
    m, G = len(exps), len(groups)
    sep = {}
    for g in groups:
        t = points[points["group"].astype(str) == g]
        sep[g] = found.fit(t, method="lbfgs", objective=objective)
    thetas = {g: np.array(list(sep[g].solver["theta"].values())) for g in groups}  # (a…, e, α…)
    # Starts: every group's own exponents and their mean, with each group's own coefficients.
    cands = [thetas[g][m + 1 :] for g in groups] + [np.mean([thetas[g][m + 1 :] for g in groups], axis=0)]
    base = np.concatenate([thetas[g][: m + 1] for g in groups])
    problems = _problems(points, law, groups, objective)
    best = _joint_polish(problems, [np.concatenate([base, c]) for c in cands], m)
    rss0 = sum(_rss(p, th) for p, th in zip(problems, _split(best.x, G, m), strict=True))
    rss1 = sum(_rss(p, thetas[g]) for p, g in zip(problems, groups, strict=True))
    n = sum(len(p.logL) for p in problems)
    q = (G - 1) * m
    lr = max(0.0, n * np.log(rss0 / rss1)) if rss1 > 0 else float("inf")
    how = "Gaussian likelihood ratio n·log(RSS_shared/RSS_separate) ~ χ²"
    test = {
        "statistic": float(lr),
        "df": q,
        "p_value": float(stats.chi2.sf(lr, q)),
        "method": how
        + (
            " (RSS of log residuals at the Huber estimates: approximate)"
            if objective == "huber-log"
            else " (least squares on raw loss)"
        ),
    }
    samples = _bootstrap(points, law, groups, objective, best.x, m, bootstrap, seed) if bootstrap else None
    q_lo, q_hi = 50 * (1 - level), 50 * (1 + level)

    def ci(j: int, transform: Any = float) -> Any:
        if samples is None or not len(samples):
            return None
        return [transform(v) for v in np.percentile(samples[:, j], [q_lo, q_hi])]

    shared = {e: _param(best.x[G * (m + 1) + j], ci(G * (m + 1) + j)) for j, e in enumerate(exps)}
    per_group = {}
    for g_i, g in enumerate(groups):
        k0 = g_i * (m + 1)
        row = {c: _param(np.exp(best.x[k0 + j]), ci(k0 + j, np.exp)) for j, c in enumerate(coefs)}
        E = float(np.exp(best.x[k0 + m]))
        driven_to_zero = E < E_ZERO * float(np.exp(problems[g_i].logL).min())
        row["E"] = _param(E, ci(k0 + m, np.exp), at_bound="lower" if driven_to_zero else None)
        per_group[g] = row
    warnings = [] if samples is not None else ["no bootstrap: no intervals"]
    return JointFit(
        law=law,
        groups=groups,
        shared=shared,
        per_group=per_group,
        separate={g: {e: _param(sep[g].params[e], None) for e in exps} for g in groups},
        test=test,
        n_points={g: len(p.logL) for g, p in zip(groups, problems, strict=True)},
        method="lbfgs (joint L-BFGS-B from the separate fits)",
        objective=objective,
        warnings=warnings + [w for g in groups for w in sep[g].warnings if "bound" in w],
    )


def _bootstrap(
    points: Any, law: str, groups: list[str], objective: str, theta: np.ndarray, m: int, n: int, seed: int
) -> np.ndarray:
    """Joint refits of ``n`` resamples of runs (weights = multiplicities), each polished from ``theta``."""
    rng = np.random.default_rng(seed)
    runs = points["run_id"].astype(str).to_numpy() if "run_id" in points.columns else np.arange(len(points))
    ids = np.unique(runs)
    out = []
    for _ in range(n):
        counts = dict(zip(*np.unique(rng.choice(ids, len(ids)), return_counts=True), strict=True))
        weights = {
            g: [counts.get(r, 0) for r in runs[(points["group"].astype(str) == g).to_numpy()]] for g in groups
        }
        if any(sum(w) == 0 for w in weights.values()):
            continue
        problems = _problems(points, law, groups, objective, weights)
        out.append(_joint_polish(problems, [theta], m, deep=False).x)
    return np.array(out)
