"""The paper's OLS laws (Eq. 1 compute on the Pareto frontier, Eq. 3 size × data) and the frontier itself."""

from __future__ import annotations

import numpy as np
import pytest

from florenz_scaling.fit import FitResult, bootstrap, fit_compute, fit_size_data, pareto_frontier, rollout

# The paper's 4×4 grid: sizes P (raw parameters), seen samples S, forward GMACs F per sample.
P = np.array([0.43e9, 1.03e9, 3.48e9, 11.22e9])
S = np.array([0.512e6, 2.048e6, 5.12e6, 10.24e6])
F = np.array([56.0, 151.0, 466.0, 1462.0])
TABLE2 = {"UC": (1.86, -0.15), "ST": (2.02, -0.18), "SC": (1.42, -0.15)}
TABLE3 = {"UC": (2.30, -0.16, -0.04), "ST": (3.03, -0.15, -0.19), "SC": (2.20, -0.13, -0.15)}


def paper_grid():
    PP, SS = np.meshgrid(P, S, indexing="ij")
    FF = np.repeat(F[:, None], len(S), axis=1)
    C = SS * FF * 1.6  # C = S·F·(1 + P_t/P), P_t/P ≈ 0.6
    return PP.ravel(), SS.ravel(), C.ravel()


def test_pareto_frontier_staircase():
    C = np.array([1, 2, 3, 4, 5, 6], dtype=float)
    L = np.array([5, 6, 4, 4, 3, 3.5])
    np.testing.assert_array_equal(pareto_frontier(C, L), [True, False, True, False, True, False])
    # equal compute: only a strictly lowest loss is on the frontier
    np.testing.assert_array_equal(pareto_frontier([1, 1, 2], [3, 2, 2.5]), [False, True, False])
    # exact duplicates count once
    np.testing.assert_array_equal(pareto_frontier([1, 1], [2, 2]), [True, True])
    # order of the input does not matter
    perm = np.array([3, 0, 5, 1, 4, 2])
    np.testing.assert_array_equal(pareto_frontier(C[perm], L[perm]), pareto_frontier(C, L)[perm])


@pytest.mark.parametrize("group", ["UC", "ST", "SC"])
def test_compute_law_simulation_recovers_table2(group):
    a0, a1 = TABLE2[group]
    _, _, C = paper_grid()
    hits = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        L = 10 ** (a0 + a1 * np.log10(C) + rng.normal(0, 0.005, len(C)))
        r = fit_compute(C, L)
        assert r.params["alpha1"] == pytest.approx(a1, abs=0.03)
        assert r.params["alpha0"] == pytest.approx(a0, abs=0.3)
        hits += r.ci["alpha1"][0] <= a1 <= r.ci["alpha1"][1]
    assert hits >= 14  # 95% intervals (frontier selection makes them a little optimistic)


def test_compute_uses_only_pareto_points_and_says_which():
    _, _, C = paper_grid()
    rng = np.random.default_rng(0)
    L = 10 ** (1.42 - 0.15 * np.log10(C) + rng.normal(0, 0.005, len(C)))
    base = fit_compute(C, L)
    front = pareto_frontier(C, L)
    assert base.used == front.tolist() and base.n_points == front.sum()
    assert base.extras["points"] == "pareto-frontier"
    assert base.extras["frontier_indices"] == np.flatnonzero(front).tolist()
    # making off-frontier points much worse changes nothing
    L2 = np.where(front, L, L * 3.0)
    assert fit_compute(C, L2).params == base.params
    assert fit_compute(C, L, frontier_only=False).n_points == len(C)


def test_compute_intervals_and_bands():
    _, _, C = paper_grid()
    rng = np.random.default_rng(2)
    L = 10 ** (2.02 - 0.18 * np.log10(C) + rng.normal(0, 0.01, len(C)))
    r = fit_compute(C, L)
    assert set(r.ci) == {"alpha0", "alpha1"} and set(r.pvalues) == {"alpha0", "alpha1"}
    assert r.pvalues["alpha1"] < 1e-3 and 0.9 < r.r2 <= 1.0 and r.method == "ols" and r.interval_kind == "t"
    assert r.dof == r.n_points - 2 and np.shape(r.covariance) == (2, 2) and r.residual_variance > 0
    x = np.geomspace(1e8, 1e11, 5)
    m, clo, chi = r.predict(C=x, interval="confidence")
    m2, plo, phi = r.predict(C=x, interval="prediction")
    np.testing.assert_allclose(m, r.predict(C=x))
    np.testing.assert_allclose(m, m2)
    assert np.all(plo < clo) and np.all(clo < m) and np.all(m < chi) and np.all(chi < phi)
    back = FitResult.from_json(r.to_json())
    assert back == r
    np.testing.assert_allclose(back.predict(C=x, interval="prediction")[1], plo)


@pytest.mark.parametrize("group", ["UC", "ST", "SC"])
def test_size_data_simulation_recovers_table3(group):
    b0, b1, b2 = TABLE3[group]
    PP, SS, _ = paper_grid()
    hits = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        L = 10 ** (b0 + b1 * np.log10(PP) + b2 * np.log10(SS) + rng.normal(0, 0.01, len(PP)))
        r = fit_size_data(PP, SS, L)
        assert r.params["beta1"] == pytest.approx(b1, abs=0.03)
        assert r.params["beta2"] == pytest.approx(b2, abs=0.03)
        truth = {"beta0": b0, "beta1": b1, "beta2": b2}
        hits += all(r.ci[k][0] <= v <= r.ci[k][1] for k, v in truth.items())
    assert hits >= 15
    assert r.n_points == 16 and all(r.used)
    assert r.predict(P=PP[:2], S=SS[:2]).shape == (2,)


def test_bootstrap_and_rollout_on_ols_laws():
    import pandas as pd

    PP, SS, C = paper_grid()
    rng = np.random.default_rng(4)
    L = 10 ** (2.20 - 0.13 * np.log10(PP) - 0.15 * np.log10(SS) + rng.normal(0, 0.01, len(PP)))
    t = pd.DataFrame({"N": PP, "D": SS, "C": C, "loss": L, "run_id": [f"r{i}" for i in range(len(L))]})
    b = bootstrap("size-data", t, n=200, budgets=None)
    assert set(b.ci) == {"beta0", "beta1", "beta2"} and "ols_ci" in b.extras and b.bootstrap.n_ok == 200
    assert b.ci["beta1"][0] < -0.13 < b.ci["beta1"][1]
    bc = bootstrap("compute", t, n=100, budgets=[1e10])
    assert "L@1e+10" in bc.bootstrap.derived
    ro = rollout(t, "size-data", by="N", holdout=1)
    assert ro["n_test"] == 4 and ro["n_train"] == 12
    assert ro["mean_abs_rel_error"] < 0.05 and abs(ro["signed_bias"]) < 0.05
    assert rollout(t, "compute", by="C", holdout=2)["n_test"] == 2
