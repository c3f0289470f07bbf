"""Laws a researcher writes in YAML: the whitelist parser's refusals, and a YAML-only law used like a built-in
(fitted, bootstrapped, joint-fitted with a shared exponent, plotted, reported, proposed from, replayed) on
simulated data whose parameters are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from florenz_scaling.cli import main
from florenz_scaling.fit import FitResult, fit_joint, fit_points, get_law, load_laws
from florenz_scaling.fit.laws import LawError, law_from_definition, unregister
from florenz_scaling.fit.laws import expr as ex

TIED = """\
laws:
  tied-test:
    expr: "E + A * N**(-alpha) + B * D**(-alpha)"
    params:
      E:     {bounds: [0, 10],     start: [0.5, 1.5, 2.5]}
      A:     {bounds: [1e-3, 1e6], start: [100, 1000], scale: log}
      B:     {bounds: [1e-3, 1e6], start: [100, 1000], scale: log}
      alpha: {bounds: [0.01, 2],   start: [0.1, 0.3, 0.5], role: exponent}
    response: log
"""
TRUE = {"E": 1.8, "A": 400.0, "B": 1500.0, "alpha": 0.33}
SIZES = np.geomspace(5e7, 2e9, 6)
RATIOS = np.geomspace(5.0, 200.0, 5)


def _definition(expr: str) -> dict:
    return {"expr": expr, "params": {"A": {"bounds": [0, 1]}, "alpha": {"bounds": [0, 1]}}}


@pytest.mark.parametrize(
    ("expr", "shown"),
    [
        ("__import__('os')", "__import__('os')"),
        ("N.__class__", "N.__class__"),
        ("open('/etc/passwd')", "open('/etc/passwd')"),
        ("[x for x in N]", "[x for x in N]"),
        ("lambda: A", "lambda: A"),
        ("A * N**(-alpha) + Z", "'Z'"),
        ("A * gamma(N)**(-alpha)", "gamma(N)"),
        ("A * N[0]**(-alpha)", "N[0]"),
    ],
)
def test_the_parser_refuses_anything_off_the_whitelist(expr: str, shown: str) -> None:
    with pytest.raises(LawError) as e:
        law_from_definition("evil", _definition(expr))
    assert "law 'evil'" in str(e.value) and shown in str(e.value)


def test_the_parser_accepts_the_whitelist_and_differentiates_exactly() -> None:
    text = "max(A * N**(-alpha), 0.1) + sqrt(abs(log10(D) - log(N))) + exp(-alpha) / min(N, D, 3)"
    tree = ex.parse(text, ("A", "alpha", "N", "D"), "ok")
    env = {"A": 2.0, "alpha": 0.3, "N": np.array([10.0, 1e4]), "D": np.array([100.0, 5.0])}
    expect = np.maximum(2 * env["N"] ** -0.3, 0.1) + np.sqrt(np.abs(np.log10(env["D"]) - np.log(env["N"])))
    expect = expect + np.exp(-0.3) / np.minimum(np.minimum(env["N"], env["D"]), 3)
    np.testing.assert_allclose(ex.evaluate(tree, env), expect)
    d = ex.evaluate(ex.diff(tree, "alpha"), env)
    h = 1e-7
    fd = (ex.evaluate(tree, {**env, "alpha": 0.3 + h}) - ex.evaluate(tree, {**env, "alpha": 0.3 - h})) / (
        2 * h
    )
    np.testing.assert_allclose(d, fd, rtol=1e-6)


def test_a_missing_input_column_is_refused_by_name() -> None:
    with pytest.raises(LawError, match="data-constrained.*needs input column.*U"):
        get_law("data-constrained").fit(pd.DataFrame({"N": [1.0] * 9, "D": [1.0] * 9, "loss": [1.0] * 9}))


@pytest.fixture(scope="module")
def tied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("laws") / "laws.yaml"
    path.write_text(TIED)
    assert load_laws(path) == ["tied-test"]
    return path


def simulate(seed: int = 0, E: float = TRUE["E"], noise: float = 0.005) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    N, R = np.meshgrid(SIZES, RATIOS, indexing="ij")
    N, D = N.ravel(), (N * R).ravel()
    p = {**TRUE, "E": E}
    L = (p["E"] + p["A"] * N ** -p["alpha"] + p["B"] * D ** -p["alpha"]) * np.exp(
        rng.normal(0, noise, len(N))
    )
    return pd.DataFrame(
        {"N": N, "D": D, "C": 6 * N * D, "loss": L, "run_id": [f"r{i}" for i in range(len(N))]}
    )


def test_a_yaml_law_is_fitted_and_bootstrapped_recovering_its_parameters(tied: Path) -> None:
    res = fit_points(simulate(), "tied-test", bootstrap=200, budgets=[1e20])
    assert res.status == "converged" and res.method == "lbfgs" and res.bootstrap.n_ok >= 190
    for k, v in TRUE.items():
        lo, hi = res.ci[k]
        assert lo <= v <= hi, (k, v, res.ci[k])
    assert "N_opt@1e+20" in res.bootstrap.derived  # the allocation of a law of N and D, found numerically
    # the fit file carries the definition: a process that never loaded the YAML reads it back
    text = res.to_json()
    unregister("tied-test")
    back = FitResult.from_json(text)
    assert (
        back.params == res.params
        and get_law("tied-test").definition == res.extras["law_definition"]["tied-test"]
    )


def test_a_yaml_law_is_joint_fitted_with_a_shared_exponent(tied: Path) -> None:
    a, b = simulate(1, E=1.8), simulate(2, E=2.3)
    b["run_id"] = a["run_id"]  # one run gives a point in every group
    pts = pd.concat([a.assign(group="UC"), b.assign(group="SC")], ignore_index=True)
    j = fit_joint(pts, "tied-test", bootstrap=60)
    assert (
        set(j.shared) == {"alpha"}
        and j.shared["alpha"]["ci"][0] <= TRUE["alpha"] <= j.shared["alpha"]["ci"][1]
    )
    for g, E in (("UC", 1.8), ("SC", 2.3)):
        lo, hi = j.per_group[g]["E"]["ci"]
        assert lo <= E <= hi
    assert j.test["p_value"] > 0.01  # truly shared: not rejected
    shared_e = fit_joint(pts, "tied-test", bootstrap=0, shared=("alpha", "A", "B"))
    assert set(shared_e.shared) == {"alpha", "A", "B"} and set(shared_e.per_group["UC"]) == {"E"}


def test_a_yaml_law_is_plotted_and_reported(tied: Path) -> None:
    from plot_sweeps import make_table

    from florenz_scaling.fit import sweep_points
    from florenz_scaling.plot import compute_optimal_frontier, fit_residuals
    from florenz_scaling.report.tables import fits_table

    table = make_table()
    pts = sweep_points(table, level="group")
    fits = [fit_points(pts[pts["group"] == g], "tied-test", group=g, bootstrap=20) for g in ("UC", "SC")]
    fig = fit_residuals(table, fits)
    assert len(fig.axes) == 2 and all(ax.collections for ax in fig.axes)
    fig = compute_optimal_frontier(table, fits)
    assert any("tied-test" in line.get_label() for ax in fig.axes for line in ax.get_lines())
    rows = fits_table(fits, None)
    assert set(rows["law"]) == {"tied-test"} and {"alpha", "E"} <= set(rows["parameter"])


def test_a_yaml_law_is_used_by_propose_and_replay(tied: Path, tmp_path: Path) -> None:
    from florenz_scaling.design import parse_target
    from florenz_scaling.design.pool import Candidate
    from florenz_scaling.design.propose import propose
    from florenz_scaling.design.replay import replay

    pts = simulate(3)
    small = pts[pts["N"] < SIZES[-1]].reset_index(drop=True)
    big = pts[pts["N"] == SIZES[-1]].reset_index(drop=True)
    pool = [Candidate(f"c{i}", r.N, r.D, r.C, r.C / 1e18) for i, r in enumerate(big.itertuples())]
    target = parse_target(f"N={4 * SIZES[-1]:g},D={80 * SIZES[-1]:g}", "tied-test")
    prop = propose(small, "tied-test", target, pool, k=2, method="linearised")
    assert len(prop.chosen) == 2 and prop.chosen[0][0].name.startswith("c")
    targets = big.iloc[-2:]
    result = replay(pts.iloc[:-2], targets, "tied-test", tolerance=0.03, strategies=("variance", "full"))
    assert result["strategies"]["full"]["compute_fraction"] == 1.0  # the whole pool predicts the targets
    assert result["strategies"]["variance"]["compute_fraction"] < 1.0  # and a part of it already does


def test_fit_predict_gives_intervals_that_cover_the_truth(tied: Path, tmp_path: Path, capsys) -> None:
    pts = simulate(4)
    pts.to_csv(tmp_path / "runs.csv", index=False)
    N = np.array([5e9, 1e10])
    pd.DataFrame({"N": N, "D": 20 * N}).to_csv(tmp_path / "targets.csv", index=False)
    out = tmp_path / "pred.json"
    argv = ["fit", str(tmp_path / "runs.csv"), "--law", "tied-test", "--laws", str(tied)]
    assert (
        main([*argv, "--predict", str(tmp_path / "targets.csv"), "--bootstrap", "200", "--json", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "predictions of tied-test" in printed and "95% interval" in printed
    rows = json.loads(out.read_text())["predictions"]
    assert [set(r) for r in rows] == [{"N", "D", "prediction", "lower", "upper"}] * 2
    truth = TRUE["E"] + TRUE["A"] * N ** -TRUE["alpha"] + TRUE["B"] * (20 * N) ** -TRUE["alpha"]
    for r, t in zip(rows, truth, strict=True):
        assert r["lower"] < r["prediction"] < r["upper"] and r["lower"] <= t <= r["upper"]


def test_an_unknown_law_on_the_command_line_names_the_known_ones(capsys) -> None:
    assert main(["fit", "/dev/null", "--law", "kaplan"]) == 1
    assert "unknown law 'kaplan'" in capsys.readouterr().err
