"""``propose`` by replay's ``adaptive`` criterion (``design.acquire``), for laws with a formula form.

The measured runs and the candidates are rows of one pool for ``design.lsq``: the measured ones are fitted
(least squares from ``poolfits.N_STARTS`` random starts of seed 0, the law's own objective: the first fit
of replay's ``adaptive`` repeat of seed 0, so the first choice is the same, tested), and every candidate is
scored by ``acquire.score("adaptive", …)``. The variances shown are the target's predictive variance in
raw loss² (Fisher plus the disagreement of the fit's near-optimal modes, ``acquire.target_variance``), now
and expected after the run, with the noise variance of the residuals, SSR/(n − p) (floored at 0.1 % of the
mean loss, squared): the criterion's own σ² (``acquire.noise_variance``) is a prior-heavy estimate that
stays near the losses' spread while runs are few, right for ranking early, but an interval from it would be
several times too wide for ``run --adaptive --width`` (measured on the paper grid with 0.5 % noise: ± 0.45
against a true error of 0.075). With no residual degrees of freedom the criterion's σ² is shown.

A batch of k is chosen greedily without inventing losses that matter: each pick is added to the fitted rows
with the best fit's prediction as its loss (so the Fisher information gains its Jacobian row and the noise
estimate its degree of freedom), and each competing mode's raw SSR grows by its squared disagreement with
the best fit there, which is how measuring that run would down-weight the modes it rules out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from florenz_scaling.design import acquire
from florenz_scaling.design.lsq import Fits
from florenz_scaling.design.model import DesignError, Target, law_inputs
from florenz_scaling.design.pool import Candidate, unmeasured
from florenz_scaling.design.poolfits import PoolFits
from florenz_scaling.design.rank import Scored
from florenz_scaling.fit import get_law

SIGMA_FLOOR_REL = 1e-3  # a new run's noise sd is at least 0.1 % of the loss (as design.model's floor)


@dataclass
class Ranking:
    """What ``propose`` reports: the target now, the ranked pool and the chosen batch (candidate, score)."""

    estimate: float
    var_now: float
    ranked: list[tuple[Candidate, Scored]]
    chosen: list[tuple[Candidate, Scored]]
    warnings: list[str]
    n_points: int
    sigma: float


def propose_adaptive(
    points: Any,
    law: str,
    target: Target,
    pool: list[Candidate],
    *,
    k: int | None = 1,
    budget: float | None = None,
) -> Ranking:
    """The pool ranked and a batch chosen by replay's ``adaptive`` criterion (module docstring)."""
    if target.inputs is None:
        raise DesignError(
            f"target {target.label}: the adaptive criterion pins down a loss; for a parameter use "
            "--method ensemble"
        )
    inputs = law_inputs(law)
    cands = unmeasured(pool, points, inputs)
    if not cands:
        raise DesignError("every candidate of the pool has been measured already; give a larger --pool")
    pts = points.reset_index(drop=True)
    m = len(pts)
    cx = np.array([c.inputs(inputs) for c in cands], dtype=float).reshape(len(cands), len(inputs))
    X = {name: np.r_[np.asarray(pts[name], dtype=float), cx[:, j]] for j, name in enumerate(inputs)}
    y = np.r_[np.asarray(pts["loss"], dtype=float), np.full(len(cands), np.nan)]
    pf = PoolFits(get_law(law), X, y)
    f = pf.fitter
    bought = list(range(m))
    fits = pf.fits(bought, fresh=True)
    if fits is None:
        raise DesignError(f"law {law} cannot be fitted to the measured runs (every start failed)")
    T = {name: np.array([float(target.inputs[name])]) for name in inputs}
    costs = np.array([c.cost for c in cands], dtype=float)
    total = float(costs.sum())
    estimate = float(f.predict(fits.best, T)[0, 0])
    rss = float((fits.rss if fits.rss is not None else fits.ssr)[0])
    floor = (SIGMA_FLOOR_REL * float(np.mean(f.y[bought]))) ** 2
    sigma2 = max(rss / (m - f.p), floor) if m > f.p else acquire.noise_variance(fits, f.y[bought])

    def rank(fits: Fits, among: list[int]) -> tuple[float, np.ndarray, np.ndarray]:
        idx = np.array(bought)
        cand = np.array(among) + m
        var = acquire.target_variance(f, fits, idx, T, sigma2=sigma2)
        g = acquire.gains("adaptive", f, fits, idx, cand, T, sigma2=sigma2)
        s = acquire.score("adaptive", f, fits, idx, cand, costs[among], total, T)
        return var, g, np.where(np.isfinite(s), s, -np.inf)

    everyone = list(range(len(cands)))
    var_now, g, s = rank(fits, everyone)
    scored = sorted(
        (Scored(i, float(costs[i]), var_now, float(max(var_now - g[i], 0.0)), float(s[i])) for i in everyone),
        key=lambda x: -(x.score if x.score is not None else -np.inf),
    )
    picked: list[Scored] = []
    left, spent = list(everyone), 0.0
    while left and (k is None or len(picked) < k):
        ok = [i for i in left if budget is None or spent + costs[i] <= budget * (1 + 1e-12)]
        if not ok:
            break
        var, g, s = rank(fits, ok)
        j = int(np.argmax(s))
        if not (np.isfinite(s[j]) and g[j] > 0):
            break
        i = ok[j]
        picked.append(Scored(i, float(costs[i]), var, float(max(var - g[j], 0.0)), float(s[j])))
        fits = _believe(pf, fits, m + i)
        bought.append(m + i)
        spent += costs[i]
        left.remove(i)
    warnings = []
    if budget is not None and not picked:
        warnings.append(f"no candidate fits the budget of {budget:g} (cheapest costs {costs.min():.4g})")
    return Ranking(
        estimate,
        var_now,
        [(cands[x.index], x) for x in scored],
        [(cands[x.index], x) for x in picked],
        warnings,
        m,
        float(np.sqrt(sigma2)),
    )


def _believe(pf: PoolFits, fits: Fits, row: int) -> Fits:
    """The state after measuring pool row ``row`` at the best fit's prediction (module docstring)."""
    f = pf.fitter
    pred = f.predict(fits.theta, f.subset([row]))[:, 0]
    f.y[row] = pred[0]
    rss = fits.rss if fits.rss is not None else fits.ssr
    with np.errstate(all="ignore"):
        grown = rss + (pred - pred[0]) ** 2
    return Fits(fits.theta, fits.ssr, fits.n + 1, np.where(np.isfinite(grown), grown, np.inf))
