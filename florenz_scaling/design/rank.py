"""Rank candidate runs by the expected reduction of a target's variance per unit of cost.

For each candidate, its point's Jacobian row j gives the expected posterior variance of the target after
adding it (Sherman–Morrison on the linearised model's covariance, see ``design.model``):
    Var' = Var − (gᵀΣj)² / (σ² + jᵀΣj).
The gain per cost is (Var − Var') / cost. A batch is chosen greedily: the best candidate is added to the
information, everyone is re-scored, and so on; in the linearised model this needs no imagined losses.
Several targets are combined as the sum of their *relative* variances Var(T)/T² so that a loss and an
exponent (or a 7B and a 13B loss) count on one scale.

``d_optimal`` is the baseline the issue names: log det of the information per cost, target-agnostic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from florenz_scaling.design.model import LinearModel, Target


@dataclass(frozen=True)
class Scored:
    """One candidate's score: the target variance now and after adding it, its cost and gain per cost."""

    index: int
    cost: float
    var_before: float
    var_after: float
    score: float | None = None  # the ranking criterion's own score, where it is not gain per cost

    @property
    def reduction(self) -> float:
        """Expected variance reduction from adding this candidate."""
        return self.var_before - self.var_after

    @property
    def gain_per_cost(self) -> float:
        """Expected variance reduction per unit of cost (per GPU-hour for a sweep's pool)."""
        return self.reduction / self.cost if self.cost > 0 else float("inf")

    @property
    def ratio(self) -> float:
        """Var after / Var now (1 = the candidate teaches nothing about the target)."""
        return self.var_after / self.var_before if self.var_before > 0 else 1.0


def _weights(model: LinearModel, targets: Sequence[Target]) -> np.ndarray:
    """Gradient rows G (t, p) so that the combined objective is Σ_t (g_tᵀ Σ g_t)."""
    if len(targets) == 1:
        return model.target_gradient(targets[0])[None, :]
    rows = []
    for t in targets:
        v = model.target_value(t)
        rows.append(model.target_gradient(t) / (abs(v) if v else 1.0))  # relative variance
    return np.array(rows)


def target_variance(model: LinearModel, targets: Sequence[Target], cov: np.ndarray | None = None) -> float:
    """The (combined) target variance under covariance ``cov`` (default: the model's)."""
    S = model.covariance() if cov is None else cov
    G = _weights(model, targets)
    return float(np.einsum("ti,ij,tj->", G, S, G))


def score(
    model: LinearModel,
    targets: Sequence[Target],
    X: np.ndarray,
    costs: Sequence[float],
    cov: np.ndarray | None = None,
) -> list[Scored]:
    """Score each candidate point (rows of ``X``, law inputs) for adding it alone to covariance ``cov``."""
    S = model.covariance() if cov is None else cov
    G = _weights(model, targets)
    J = model.jacobian(np.asarray(X, dtype=float))  # (c, p)
    before = float(np.einsum("ti,ij,tj->", G, S, G))
    SJ = J @ S  # (c, p): Σ j for each candidate (Σ symmetric)
    denom = model.sigma2 + np.einsum("cp,cp->c", SJ, J)
    num = ((SJ @ G.T) ** 2).sum(axis=1)  # Σ_t (g_tᵀ Σ j)²
    after = before - num / denom
    return [
        Scored(i, float(c), before, float(max(a, 0.0)))
        for i, (c, a) in enumerate(zip(costs, after, strict=True))
    ]


def add_point(model: LinearModel, cov: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The covariance after adding one point at inputs ``x`` (rank-1 update)."""
    j = model.jacobian(np.atleast_2d(x))[0]
    Sj = cov @ j
    return cov - np.outer(Sj, Sj) / (model.sigma2 + j @ Sj)


def greedy(
    model: LinearModel,
    targets: Sequence[Target],
    X: np.ndarray,
    costs: Sequence[float],
    *,
    k: int | None = None,
    budget: float | None = None,
) -> list[Scored]:
    """Choose up to ``k`` candidates (and at most ``budget`` total cost) one at a time by gain per cost.

    Each pick is scored against the covariance after the earlier picks, so a batch does not buy the same
    information twice. Stops early when no affordable candidate reduces the variance.
    """
    X = np.asarray(X, dtype=float)
    costs = np.asarray(costs, dtype=float)
    cov = model.covariance()
    left = list(range(len(X)))
    spent, picked = 0.0, []
    while left and (k is None or len(picked) < k):
        affordable = [i for i in left if budget is None or spent + costs[i] <= budget * (1 + 1e-12)]
        if not affordable:
            break
        scored = score(model, targets, X[affordable], costs[affordable], cov)
        best = max(scored, key=lambda s: s.gain_per_cost)
        if best.reduction <= 0:
            break
        i = affordable[best.index]
        picked.append(Scored(i, best.cost, best.var_before, best.var_after))
        cov = add_point(model, cov, X[i])
        spent += costs[i]
        left.remove(i)
    return picked


def d_optimal(model: LinearModel, X: np.ndarray, costs: Sequence[float]) -> np.ndarray:
    """Baseline: the gain in log det of the information from each candidate, per cost (target-agnostic)."""
    J = model.jacobian(np.asarray(X, dtype=float))
    S = model.covariance()
    lever = np.einsum("cp,pq,cq->c", J, S, J) / model.sigma2  # jᵀΣj/σ²: log det grows by log(1 + this)
    return np.log1p(lever) / np.asarray(costs, dtype=float)
