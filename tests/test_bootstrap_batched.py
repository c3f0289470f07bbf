"""All bootstrap resamples refitted at once (``fit._newton``) against the per-resample polish they replace.

The same resamples (same seed, same draws) are refitted both ways; the intervals must agree. On Epoch's data
the two reach the same optima (measured: interval endpoints within 5e-8 relative); on small simulated data
sets the Huber objective's kinks leave the odd resample at a slightly different floor for either optimiser
(measured: at most 2.3e-4 relative), so the tolerance there is 1e-3. On simulations with known parameters
the 95% intervals cover them at the nominal rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from florenz_scaling.fit import (
    bootstrap,
    fit_chinchilla,
    fit_points,
    load_points,
    predict_targets,
    small_grid,
)
from florenz_scaling.fit._newton import lse_parts
from florenz_scaling.fit._optim import LSEProblem
from florenz_scaling.fit.bootstrap import resample_weights, resamples

TRUE = {"E": 1.8, "A": 400.0, "alpha": 0.34, "B": 2000.0, "beta": 0.37}


def simulated(seed: int, n: int = 60, sigma: float = 0.02) -> pd.DataFrame:
    """Chinchilla-shaped losses at known parameters with 2% multiplicative noise, one run per row."""
    rng = np.random.default_rng(seed)
    N, D = 10 ** rng.uniform(7, 10, n), 10 ** rng.uniform(9, 12, n)
    L = TRUE["E"] + TRUE["A"] * N ** -TRUE["alpha"] + TRUE["B"] * D ** -TRUE["beta"]
    return pd.DataFrame({"N": N, "D": D, "loss": L * np.exp(sigma * rng.standard_normal(n))})


def max_rel_diff(a, b) -> float:
    """Largest relative difference of the interval endpoints, parameters and derived quantities."""
    pairs = [(a.ci[k], b.ci[k]) for k in b.ci]
    pairs += [(a.bootstrap.derived[k]["ci"], v["ci"]) for k, v in b.bootstrap.derived.items()]
    return max(abs(x - y) / abs(y) for u, v in pairs for x, y in zip(u, v, strict=True))


@pytest.mark.parametrize("objective", ["huber-log", "mse-raw"])
def test_exact_gradient_and_hessian(objective):
    pts = simulated(0, n=30)
    X, y = np.c_[np.log(pts.N), np.log(pts.D)], np.log(pts.loss.to_numpy())
    w = np.random.default_rng(1).integers(0, 3, len(y)).astype(float)
    theta = np.array([6.0, 7.6, 0.59, 0.35, 0.37])
    f, g, H = lse_parts(theta[None], X, y, w[None], delta=1e-3, objective=objective)
    problem = LSEProblem(X, y, weights=w, objective=objective)
    f_ref, g_ref = problem.scalar(theta)
    assert f[0] == pytest.approx(f_ref, rel=1e-12)
    np.testing.assert_allclose(g[0], g_ref, rtol=1e-9, atol=1e-14 * np.abs(g_ref).max())
    h = 1e-6  # the Hessian against central differences of the (exact) gradient
    H_fd = np.array(
        [(problem.scalar(theta + h * e)[1] - problem.scalar(theta - h * e)[1]) / (2 * h) for e in np.eye(5)]
    )
    np.testing.assert_allclose(H[0], H_fd, atol=1e-6 * np.abs(H_fd).max())


def test_weights_are_the_same_resamples_as_row_draws():
    table = pd.DataFrame({"run_id": ["a", "a", "b", "c", "c", "c"], "x": range(6)})
    _, picks = resamples(table, "run_id", 7, seed=3)
    _, chunks = resample_weights(table, "run_id", 7, seed=3, max_cells=12)  # chunks of 2 resamples
    W = np.vstack(list(chunks))
    expected = np.stack([np.bincount(idx, minlength=len(table)) for idx in picks])
    np.testing.assert_array_equal(W, expected)


def test_epoch_intervals_equal_the_per_resample_polish(chinchilla_epoch):
    pts = load_points(chinchilla_epoch).sort_values("loss", kind="stable").iloc[:-5]
    point = fit_chinchilla(pts["N"], pts["D"], pts["loss"])
    kw = {"n": 200, "seed": 0, "budgets": [5.76e23], "point": point}
    fast = bootstrap("chinchilla", pts, **kw)
    slow = bootstrap("chinchilla", pts, batched=False, **kw)
    assert fast.bootstrap.per_resample_fit.startswith("all resamples at once")
    assert fast.bootstrap.n_ok == slow.bootstrap.n_ok == 200
    assert max_rel_diff(fast, slow) <= 1e-6


def test_simulated_intervals_agree_and_cover_the_truth():
    for seed in (0, 1):  # seed 0's full fit has two local optima: both warm starts are used
        pts = simulated(seed)
        point = fit_chinchilla(pts["N"], pts["D"], pts["loss"], init_grid=small_grid())
        kw = {"n": 100, "seed": seed, "point": point, "budgets": [1e21]}
        fast, slow = bootstrap("chinchilla", pts, **kw), bootstrap("chinchilla", pts, batched=False, **kw)
        assert max_rel_diff(fast, slow) <= 1e-3
    hits = {k: 0 for k in TRUE}
    n_sets = 30
    for seed in range(100, 100 + n_sets):
        pts = simulated(seed)
        point = fit_chinchilla(pts["N"], pts["D"], pts["loss"], init_grid=small_grid())
        ci = bootstrap("chinchilla", pts, n=200, seed=seed, point=point).ci
        for k, v in TRUE.items():
            hits[k] += ci[k][0] <= v <= ci[k][1]
    rates = {k: h / n_sets for k, h in hits.items()}
    # 95% nominal: each parameter >= 80% of 30 sets (binomial 5% tail ~ 87%), all together >= 88%.
    assert min(rates.values()) >= 0.8, rates
    assert np.mean(list(rates.values())) >= 0.88, rates


def test_prediction_intervals_are_the_batched_refits_too():
    pts = simulated(3).assign(run_id=lambda t: [f"r{i}" for i in range(len(t))])
    fit = fit_points(pts, "chinchilla", method="lbfgs")
    targets = pd.DataFrame({"N": [1e9, 1e10], "D": [2e10, 2e11]})
    fast = predict_targets(fit, pts, targets, n=100, seed=5)
    slow = predict_targets(fit, pts, targets, n=100, seed=5, batched=False)
    assert fast["n_ok"] == slow["n_ok"] == 100
    for a, b in zip(fast["predictions"], slow["predictions"], strict=True):
        assert a["lower"] < a["prediction"] < a["upper"]
        assert a["lower"] == pytest.approx(b["lower"], rel=1e-6) and a["upper"] == pytest.approx(
            b["upper"], rel=1e-6
        )
