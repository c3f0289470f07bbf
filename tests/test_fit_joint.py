"""Joint fits over groups: shared exponents, the shared-vs-separate test (F for OLS, likelihood ratio for the
non-linear laws) by simulation, and the OLS statistics against statsmodels to 1e-8."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from florenz_scaling.fit import JointFit, fit_compute, fit_joint, fit_size_data
from florenz_scaling.fit.joint import _ols_data, _ols_design

P = np.array([0.43e9, 1.03e9, 3.48e9, 11.22e9])
S = np.array([0.512e6, 2.048e6, 5.12e6, 10.24e6])
F = np.array([56.0, 151.0, 466.0, 1462.0])
SHARED = {"SC": (2.20, -0.13, -0.15), "UC": (2.30, -0.13, -0.15), "ST": (3.03, -0.13, -0.15)}
DIFFERENT = {"SC": (2.20, -0.13, -0.15), "UC": (2.30, -0.16, -0.04), "ST": (3.03, -0.15, -0.19)}


def grid_points(coef: dict, seed: int, sigma: float = 0.01) -> pd.DataFrame:
    """The paper's 4×4 grid, one point per (run, group) from log10 L = b0 + b1 log10 P + b2 log10 S."""
    rng = np.random.default_rng(seed)
    PP, SS = (a.ravel() for a in np.meshgrid(P, S, indexing="ij"))
    C = SS * np.repeat(F, len(S)) * 1.6
    rows = []
    for g, (b0, b1, b2) in coef.items():
        L = 10 ** (b0 + b1 * np.log10(PP) + b2 * np.log10(SS) + rng.normal(0, sigma, len(PP)))
        rows.append(
            pd.DataFrame(
                {"N": PP, "D": SS, "C": C, "loss": L, "group": g, "run_id": [f"r{i}" for i in range(len(PP))]}
            )
        )
    return pd.concat(rows, ignore_index=True)


def rejection_rate(coef: dict, law: str, seeds: int = 200) -> float:
    return float(np.mean([fit_joint(grid_points(coef, s), law).test["p_value"] < 0.05 for s in range(seeds)]))


def test_shared_exponents_are_not_rejected_at_the_nominal_rate() -> None:
    rate = rejection_rate(SHARED, "size-data")
    # 200 seeds at a 5% level: the binomial 99% range is about [1.5%, 10%].
    assert 0.01 <= rate <= 0.10, rate


def test_different_exponents_are_rejected() -> None:
    assert rejection_rate(DIFFERENT, "size-data", seeds=50) == 1.0
    assert rejection_rate(DIFFERENT, "compute", seeds=50) >= 0.9


def test_compute_law_shared_slope_test_on_the_frontier() -> None:
    # The frontier is chosen by the noise, so the F-test is only approximately exact here; still near 5%.
    coef = {g: (b0, -0.15, -0.15) for g, (b0, _, _) in SHARED.items()}
    assert rejection_rate(coef, "compute") <= 0.12


def test_joint_json_round_trip_and_shape() -> None:
    j = fit_joint(grid_points(DIFFERENT, 0), "size-data", ["UC", "SC"])
    assert j.groups == ["UC", "SC"] and set(j.shared) == {"beta1", "beta2"}
    lo, hi = j.per_group["UC"]["beta0"]["ci"]
    assert set(j.per_group["UC"]) == {"beta0"} and lo < j.per_group["UC"]["beta0"]["value"] < hi
    assert j.separate["UC"]["beta2"]["ci"][0] < -0.04 < j.separate["UC"]["beta2"]["ci"][1]
    assert set(j.test) >= {"statistic", "df", "p_value", "method"} and j.test["df"] == [2, 26]
    assert JointFit.from_json(j.to_json()) == j and j.shares_exponent() is False
    with pytest.raises(ValueError, match="at least 2 groups"):
        fit_joint(grid_points(DIFFERENT, 0), "compute", ["UC"])


def test_ols_intervals_pvalues_and_f_test_match_statsmodels() -> None:
    sm = pytest.importorskip("statsmodels.api")
    pts = grid_points(DIFFERENT, 3, sigma=0.02)
    sc = pts[pts["group"] == "SC"]
    for r, X in (
        (fit_size_data(sc["N"], sc["D"], sc["loss"]), np.log10(sc[["N", "D"]].to_numpy())),
        (fit_compute(sc["C"], sc["loss"], frontier_only=False), np.log10(sc[["C"]].to_numpy())),
    ):
        ref = sm.OLS(np.log10(sc["loss"].to_numpy()), sm.add_constant(X)).fit()
        names = list(r.params)
        np.testing.assert_allclose([r.params[k] for k in names], ref.params, rtol=0, atol=1e-8)
        np.testing.assert_allclose([r.ci[k] for k in names], ref.conf_int(0.05), rtol=0, atol=1e-8)
        np.testing.assert_allclose([r.pvalues[k] for k in names], ref.pvalues, rtol=0, atol=1e-8)
        np.testing.assert_allclose(r.covariance, ref.cov_params(), rtol=0, atol=1e-8)
    for law in ("compute", "size-data"):
        groups = ["SC", "UC", "ST"]
        j = fit_joint(pts, law, groups)
        blocks, slopes = _ols_data(pts, law, groups, frontier_only=True)
        y = np.concatenate([b[1] for b in blocks])
        restricted = sm.OLS(y, _ols_design(blocks, True)).fit()
        full = sm.OLS(y, _ols_design(blocks, False)).fit()
        G = len(groups)
        for k, s in enumerate(slopes):
            assert j.shared[s]["value"] == pytest.approx(restricted.params[G + k], abs=1e-8)
            np.testing.assert_allclose(j.shared[s]["ci"], restricted.conf_int(0.05)[G + k], rtol=0, atol=1e-8)
            assert j.shared[s]["pvalue"] == pytest.approx(restricted.pvalues[G + k], abs=1e-8)
        F_ref, p_ref, df_ref = full.compare_f_test(restricted)
        assert j.test["statistic"] == pytest.approx(F_ref, rel=1e-8)
        assert j.test["p_value"] == pytest.approx(p_ref, abs=1e-8) and j.test["df"][0] == df_ref


def _saturating_points(alphas: dict, seed: int, objective_noise: str = "log") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    C = np.geomspace(1e9, 1e13, 20)
    rows = []
    for g, (E, A, al) in alphas.items():
        mean = E + A * C**-al
        L = (
            mean * np.exp(rng.normal(0, 0.005, len(C)))
            if objective_noise == "log"
            else mean + rng.normal(0, 0.01, len(C))
        )
        rows.append(
            pd.DataFrame(
                {"C": C, "N": C, "D": C, "loss": L, "group": g, "run_id": [f"r{i}" for i in range(len(C))]}
            )
        )
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("objective", ["huber-log", "mse-raw"])
def test_nonlinear_joint_likelihood_ratio(objective: str) -> None:
    noise = "log" if objective == "huber-log" else "raw"
    same = {"SC": (1.5, 300.0, 0.3), "UC": (2.0, 200.0, 0.3)}
    apart = {"SC": (1.5, 300.0, 0.3), "UC": (2.0, 200.0, 0.2)}
    p_same = [
        fit_joint(
            _saturating_points(same, s, noise), "saturating-compute", objective=objective, bootstrap=0
        ).test["p_value"]
        for s in range(12)
    ]
    assert np.mean(np.array(p_same) < 0.05) <= 0.25, p_same  # near-nominal with 12 seeds
    j = fit_joint(
        _saturating_points(apart, 0, noise), "saturating-compute", objective=objective, bootstrap=30
    )
    assert j.test["p_value"] < 1e-3 and j.test["df"] == 1 and "likelihood ratio" in j.test["method"]
    assert j.objective == objective and set(j.per_group["UC"]) == {"A", "E"}
    lo, hi = j.shared["alpha"]["ci"]
    assert 0.15 < lo < hi < 0.35
    assert j.separate["UC"]["alpha"]["value"] == pytest.approx(0.2, abs=0.03)
    assert JointFit.from_json(j.to_json()) == j
