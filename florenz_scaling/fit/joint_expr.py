"""Joint fits of any law (``fit_joint``); a formula law (built-in or from YAML) shares any named parameters.

The working vector is each group's own parameters, group after group, then the shared ones; the objective
is the sum of the groups' objectives (``fit.laws.generic.BatchProblem``, exact gradients), polished by
L-BFGS-B from the separate fits. Intervals: bootstrap over runs (a run's points in every group are resampled
together, as multiplicities). Test of shared vs separate: the likelihood ratio n·log(RSS_shared/RSS_separate)
~ χ²(q), with RSS of the objective's residuals (approximate for the Huber objective, as in ``fit.joint``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from florenz_scaling.fit.joint import JointFit, _groups_of, _param, fit_joint_nonlinear, fit_joint_ols
from florenz_scaling.fit.laws import get_law
from florenz_scaling.fit.laws.generic import BatchProblem, work_bounds


class _Layout:
    """Where each group's parameters sit in the joint working vector."""

    def __init__(self, names: tuple[str, ...], shared: tuple[str, ...], G: int) -> None:
        self.own = [i for i, n in enumerate(names) if n not in shared]
        self.sh = [i for i, n in enumerate(names) if n in shared]
        self.G, self.p = G, len(names)

    def split(self, theta: np.ndarray) -> list[np.ndarray]:
        k = len(self.own)
        out = []
        for g in range(self.G):
            v = np.empty(self.p)
            v[self.own] = theta[g * k : (g + 1) * k]
            v[self.sh] = theta[self.G * k :]
            out.append(v)
        return out

    def join(self, per_group: list[np.ndarray]) -> np.ndarray:
        own = [v[self.own] for v in per_group]
        return np.concatenate([*own, np.mean([v[self.sh] for v in per_group], axis=0)])


def _polish(
    problems: list[BatchProblem], lay: _Layout, starts: list[np.ndarray], law: Any, deep: bool
) -> Any:
    from scipy.optimize import minimize

    k = len(lay.own)

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        f, grad = 0.0, np.zeros_like(theta)
        for g, (pr, th) in enumerate(zip(problems, lay.split(theta), strict=True)):
            fg, gg = pr.scalar(th)
            f += fg
            grad[g * k : (g + 1) * k] = gg[lay.own]
            grad[lay.G * k :] += gg[lay.sh]
        return f, grad

    lo, hi = work_bounds(law)
    blo = np.concatenate([*[lo[lay.own]] * lay.G, lo[lay.sh]])
    bhi = np.concatenate([*[hi[lay.own]] * lay.G, hi[lay.sh]])
    ftol, gtol = (0.0, 1e-14) if deep else (1e-12, 1e-10)
    opts = {"ftol": ftol, "gtol": gtol, "maxiter": 10_000, "maxfun": 20_000}
    bounds = list(zip(blo, bhi, strict=True))
    runs = [
        minimize(fun, np.clip(s, blo, bhi), jac=True, method="L-BFGS-B", bounds=bounds, options=opts)
        for s in starts
    ]
    return min(runs, key=lambda r: r.fun)


def fit_joint_expr(
    points: Any,
    law: str,
    groups: list[str] | None = None,
    *,
    shared: tuple[str, ...] | None = None,
    objective: str | None = None,
    bootstrap: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> JointFit:
    """Joint fit of a formula law: ``shared`` parameters common to all groups, the rest per group."""
    from scipy import stats

    found = get_law(law)
    if not hasattr(found, "batch"):
        raise ValueError(
            f"law {law!r} is fitted jointly with its own shared parameters {', '.join(found.shared)}"
        )
    shared = tuple(shared or found.shared)
    for s in shared:
        found.param(s)  # refuses an unknown name
    if not shared:
        raise ValueError(f"law {law!r}: name the parameters to share (it declares none)")
    groups = _groups_of(points, groups)
    objective = objective or found.default_objective()
    G = len(groups)
    lay = _Layout(found.param_names, shared, G)
    tables = [points[points["group"].astype(str) == g] for g in groups]
    sep = {g: found.fit(t, objective=objective) for g, t in zip(groups, tables, strict=True)}
    thetas = [np.array(list(sep[g].solver["theta"].values())) for g in groups]

    def problems(weights: list[Any] | None = None) -> list[BatchProblem]:
        return [
            BatchProblem(
                found,
                found.columns(t),
                t["loss"].to_numpy(float),
                objective=objective,
                weights=None if weights is None else weights[i],
            )
            for i, t in enumerate(tables)
        ]

    probs = problems()
    base = lay.join(thetas)
    k = len(lay.own)
    starts = [base] + [np.concatenate([base[: G * k], th[lay.sh]]) for th in thetas]
    best = _polish(probs, lay, starts, found, deep=True)

    def rss(pr: BatchProblem, th: np.ndarray) -> float:
        r = pr.residuals(th)[0]
        return float(np.sum(pr.w * r * r))

    rss0 = sum(rss(p, th) for p, th in zip(probs, lay.split(best.x), strict=True))
    rss1 = sum(rss(p, th) for p, th in zip(probs, thetas, strict=True))
    n = sum(len(p.L) for p in probs)
    q = (G - 1) * len(shared)
    lr = max(0.0, n * np.log(rss0 / rss1)) if rss1 > 0 else float("inf")
    test = {
        "statistic": float(lr),
        "df": q,
        "p_value": float(stats.chi2.sf(lr, q)),
        "method": "Gaussian likelihood ratio n·log(RSS_shared/RSS_separate) ~ χ²"
        + (" (RSS of log residuals at the Huber estimates: approximate)" if objective == "huber-log" else ""),
    }
    samples = _bootstrap(points, tables, problems, lay, found, best.x, bootstrap, seed) if bootstrap else None
    q_lo, q_hi = 50 * (1 - level), 50 * (1 + level)

    def ci(j: int, i_param: int) -> Any:
        if samples is None or not len(samples):
            return None
        v = np.percentile(samples[:, j], [q_lo, q_hi])
        return [float(found.params[i_param].from_work(x)) for x in v]

    def nat(j: int, i_param: int) -> float:
        return float(found.params[i_param].from_work(best.x[j]))

    shared_out = {
        found.param_names[i]: _param(nat(G * k + c, i), ci(G * k + c, i)) for c, i in enumerate(lay.sh)
    }
    per_group = {
        g: {
            found.param_names[i]: _param(nat(gi * k + c, i), ci(gi * k + c, i)) for c, i in enumerate(lay.own)
        }
        for gi, g in enumerate(groups)
    }
    return JointFit(
        law=law,
        groups=groups,
        shared=shared_out,
        per_group=per_group,
        separate={g: {s: _param(sep[g].params[s], None) for s in shared} for g in groups},
        test=test,
        n_points={g: len(p.L) for g, p in zip(groups, probs, strict=True)},
        method="lbfgs (joint L-BFGS-B from the separate fits, exact Jacobian)",
        objective=objective,
        warnings=([] if samples is not None else ["no bootstrap: no intervals"])
        + [w for g in groups for w in sep[g].warnings if "bound" in w],
    )


def _bootstrap(
    points: Any, tables: list, problems: Any, lay: _Layout, law: Any, theta: np.ndarray, n: int, seed: int
) -> np.ndarray:
    """Joint refits of ``n`` resamples of runs (weights = multiplicities), each polished from ``theta``."""
    rng = np.random.default_rng(seed)
    col = "run_id" if "run_id" in points.columns else None
    runs_of = [t[col].astype(str).to_numpy() if col else np.arange(len(t)).astype(str) for t in tables]
    ids = np.unique(points[col].astype(str).to_numpy()) if col else np.unique(np.concatenate(runs_of))
    out = []
    for _ in range(n):
        counts = dict(zip(*np.unique(rng.choice(ids, len(ids)), return_counts=True), strict=True))
        weights = [np.array([counts.get(r, 0) for r in runs], dtype=float) for runs in runs_of]
        if any(w.sum() == 0 for w in weights):
            continue
        out.append(_polish(problems(weights), lay, [theta], law, deep=False).x)
    return np.array(out)


def fit_joint(
    points: Any,
    law: str,
    groups: list[str] | None = None,
    *,
    objective: str | None = None,
    bootstrap: int = 200,
    seed: int = 0,
    level: float = 0.95,
    shared: tuple[str, ...] | None = None,
) -> JointFit:
    """The joint fit of ``law`` over ``groups`` (default: every group in ``points``).

    The OLS laws share their slopes and the log-sum-exp laws their exponents; any other law shares
    ``shared`` (default: the law's own ``shared`` parameters), see ``fit.joint_expr``."""
    from florenz_scaling.fit._blas import single_threaded_blas

    found = get_law(law)
    if found.linear_in_logs:
        return fit_joint_ols(points, law, groups, level=level)
    with single_threaded_blas():  # tiny L-BFGS-B problems: idle BLAS threads would starve them
        if found.family == "lse" and shared in (None, found.shared):
            return fit_joint_nonlinear(
                points,
                law,
                groups,
                objective=objective or "huber-log",
                bootstrap=bootstrap,
                seed=seed,
                level=level,
            )
        return fit_joint_expr(
            points,
            law,
            groups,
            shared=shared,
            objective=objective,
            bootstrap=bootstrap,
            seed=seed,
            level=level,
        )
