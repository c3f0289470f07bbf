"""The non-linear fits' objective: Huber on log loss (default) or least squares on raw loss, both recovering
known parameters, recorded in the result, and carried into the bootstrap resamples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from florenz_scaling.fit import FitResult, LSEProblem, fit_chinchilla, fit_points, fit_saturating_compute

TRUE_CH = {"E": 1.8, "A": 450.0, "B": 2000.0, "alpha": 0.34, "beta": 0.36}
TRUE_SAT = {"E": 1.5, "A": 300.0, "alpha": 0.3}


def _grid() -> tuple[np.ndarray, np.ndarray]:
    NN, TT = np.meshgrid(np.geomspace(1e8, 1e10, 7), [5.0, 10.0, 20.0, 40.0, 80.0], indexing="ij")
    return NN.ravel(), (NN * TT).ravel()


@pytest.mark.parametrize("objective", ["huber-log", "mse-raw"])
def test_chinchilla_recovered_with_either_objective(objective: str) -> None:
    N, D = _grid()
    rng = np.random.default_rng(0)
    mean = TRUE_CH["E"] + TRUE_CH["A"] / N ** TRUE_CH["alpha"] + TRUE_CH["B"] / D ** TRUE_CH["beta"]
    L = (
        mean * np.exp(rng.normal(0, 0.003, len(N)))
        if objective == "huber-log"
        else mean + rng.normal(0, 0.006, len(N))
    )
    for method in ("lbfgs", "varpro"):
        r = fit_chinchilla(N, D, L, objective=objective, method=method)
        assert r.solver["objective"] == objective
        assert r.params["E"] == pytest.approx(TRUE_CH["E"], rel=0.05), (method, r.params)
        assert r.params["alpha"] == pytest.approx(TRUE_CH["alpha"], abs=0.05), (method, r.params)
        assert r.params["beta"] == pytest.approx(TRUE_CH["beta"], abs=0.05), (method, r.params)
    assert FitResult.from_json(r.to_json()) == r


@pytest.mark.parametrize("objective", ["huber-log", "mse-raw"])
def test_saturating_compute_and_bootstrap_use_the_objective(objective: str) -> None:
    C = np.geomspace(1e9, 1e13, 30)
    rng = np.random.default_rng(1)
    L = (TRUE_SAT["E"] + TRUE_SAT["A"] * C ** -TRUE_SAT["alpha"]) * np.exp(rng.normal(0, 0.003, len(C)))
    r = fit_saturating_compute(C, L, objective=objective)
    assert r.params["alpha"] == pytest.approx(TRUE_SAT["alpha"], abs=0.03)
    assert r.solver["objective"] == objective
    t = pd.DataFrame({"C": C, "N": C, "D": C, "loss": L, "run_id": [f"r{i}" for i in range(len(C))]})
    b = fit_points(t, "saturating-compute", bootstrap=20, method="lbfgs", objective=objective)
    assert b.solver["objective"] == objective and b.ci["alpha"][0] < TRUE_SAT["alpha"] < b.ci["alpha"][1]


def test_mse_raw_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(2)
    X = np.column_stack([np.log(np.geomspace(1e8, 1e10, 12)), np.log(np.geomspace(1e9, 1e11, 12))])
    prob = LSEProblem(X, np.log(2.0 + rng.random(12)), objective="mse-raw")
    theta = np.array([5.0, 6.0, 0.5, 0.3, 0.35])
    f, g = prob.scalar(theta)
    num = [(prob.scalar(theta + e)[0] - prob.scalar(theta - e)[0]) / 2e-6 for e in np.eye(5) * 1e-6]
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="objective must be one of"):
        LSEProblem(X, np.zeros(12), objective="l1")
