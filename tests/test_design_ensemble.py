"""The leave-one-out ensemble criterion (``design.ensemble``): its variances against brute-force Monte Carlo
under a true law, and what it adds under a wrong one (the misfit the linearised variance cannot see)."""

from __future__ import annotations

import numpy as np
import pytest

from florenz_scaling.design.ensemble import ensemble_score, jackknife_covariance, loo_predictions

# A log-linear law (size-data form, log10 L = b0 + b1 log10 P + b2 log10 S) on a 4 x 3 grid of small runs;
# the target is far beyond it, one candidate near the target and one back among the small runs.
LP = np.repeat(np.log10([1e8, 2e8, 4e8, 8e8]), 3)
LS = np.tile(np.log10([1e6, 4e6, 1.6e7]), 4)
X = np.column_stack([np.ones(12), LP, LS])
COEF = np.array([2.3, -0.15, -0.05])
SIGMA = 0.01
TARGET = np.array([[1.0, 10.0, 8.0]])
CANDS = np.array([[1.0, 9.5, 7.2], [1.0, 8.2, 6.0]])  # near the target, among the small runs


def _ensemble(y: np.ndarray) -> tuple[float, np.ndarray]:
    """Variance at the target now and after each candidate, from the leave-one-out OLS refits."""

    def refit(idx: list[int]) -> np.ndarray:
        return np.linalg.lstsq(X[idx], y[idx], rcond=None)[0]

    R = loo_predictions(refit, list(range(12)), lambda b, Z: Z @ b, np.vstack([TARGET, CANDS]))
    scored = ensemble_score(R[:, :1], R[:, 1:], [1.0, 1.0], SIGMA**2)
    return scored[0].var_before, np.array([s.var_after for s in scored])


def _mean_ensemble(curvature: float, draws: int = 200) -> tuple[float, np.ndarray]:
    rng = np.random.default_rng(7)
    out = [_ensemble(X @ COEF + curvature * (LP - 8.5) ** 2 + rng.normal(0, SIGMA, 12)) for _ in range(draws)]
    return float(np.mean([b for b, _ in out])), np.mean([a for _, a in out], axis=0)


def test_jackknife_covariance_of_known_refits() -> None:
    R = np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 5.0]])
    D = R - R.mean(axis=0)
    assert np.allclose(jackknife_covariance(R), 2 / 3 * D.T @ D)


def test_ensemble_variances_match_monte_carlo_under_a_true_law() -> None:
    before, after = _mean_ensemble(0.0)
    rng = np.random.default_rng(11)
    now, added = [], [[], []]
    for _ in range(3000):  # brute force: refit on fresh noise, without and with each candidate measured
        y = X @ COEF + rng.normal(0, SIGMA, 12)
        now.append((TARGET @ np.linalg.lstsq(X, y, rcond=None)[0])[0])
        for k in range(2):
            Xa = np.vstack([X, CANDS[k]])
            ya = np.append(y, CANDS[k] @ COEF + rng.normal(0, SIGMA))
            added[k].append((TARGET @ np.linalg.lstsq(Xa, ya, rcond=None)[0])[0])
    # The jackknife variance is known to be conservative (here by ~30%); the update is the Gaussian one.
    assert before == pytest.approx(np.var(now), rel=0.4) and before >= np.var(now)
    for k in range(2):
        assert after[k] == pytest.approx(np.var(added[k]), rel=0.35)
    assert after[0] < after[1] < before  # the run near the target teaches more


def test_under_misfit_the_run_near_the_target_is_worth_more() -> None:
    """Curved truth seen by the small runs: the refits disagree, and the ensemble (unlike the linearised
    variance, whose ratios do not depend on the losses at all) shifts its preference to the near run."""
    b0, a0 = _mean_ensemble(0.0)
    b1, a1 = _mean_ensemble(0.3)
    assert b1 > 5 * b0  # the misfit shows as spread at the target
    near_vs_far_true = (a0[0] / b0) / (a0[1] / b0)
    near_vs_far_misfit = (a1[0] / b1) / (a1[1] / b1)
    assert near_vs_far_misfit < 0.5 * near_vs_far_true
    # The linearised model's ratios for the same two candidates: fixed by the design alone.
    info = X.T @ X / SIGMA**2
    cov = np.linalg.inv(info)
    g = TARGET[0]
    lin = [g @ cov @ g - (g @ cov @ j) ** 2 / (SIGMA**2 + j @ cov @ j) for j in CANDS]
    assert near_vs_far_true == pytest.approx(lin[0] / lin[1], rel=0.3)


def test_failed_refits_are_dropped() -> None:
    def refit(idx: list[int]) -> np.ndarray | None:
        return None if 0 not in idx else np.array([1.0, np.inf if 1 not in idx else 0.0, 0.0])

    R = loo_predictions(refit, [0, 1, 2, 3], lambda b, Z: Z @ b, TARGET)
    assert R.shape == (2, 1)  # without run 0: no fit; without run 1: not finite


def test_propose_ranks_by_the_ensemble_and_falls_back_to_fisher() -> None:
    """``propose`` uses the leave-one-out refits by default; on a true law its spread at the target is the
    Fisher one's order of magnitude, and ``method="linearised"`` gives the Fisher ranking."""
    import pandas as pd

    from florenz_scaling.design import Candidate, parse_target
    from florenz_scaling.design.propose import ENSEMBLE_METHOD, METHOD, propose

    rng = np.random.default_rng(3)
    N = np.repeat([2e7, 5e7, 1e8, 2e8], 4)
    D = np.tile([4e8, 1e9, 2.5e9, 6e9], 4)
    L = (1.5 + 400 / N**0.34 + 600 / D**0.4) * np.exp(rng.normal(0, 0.005, len(N)))
    pts = pd.DataFrame({"N": N, "D": D, "C": 6 * N * D, "loss": L})
    pool = [
        Candidate(f"c{i}", n, d, 6 * n * d, cost=n * d / 1e17)
        for i, (n, d) in enumerate([(5e8, 1e10), (1e9, 2e10), (2e7, 6e9)])
    ]
    target = parse_target("N=2e9,D=4e10", "chinchilla")
    ens = propose(pts, "chinchilla", target, pool, k=2, method="ensemble")
    lin = propose(pts, "chinchilla", target, pool, k=2, method="linearised")
    assert ens.method == ENSEMBLE_METHOD and lin.method == METHOD
    assert 0.2 < ens.var_now / lin.var_now < 5
    assert all(s.var_after < ens.var_now for _, s in ens.chosen)
