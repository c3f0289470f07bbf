"""The adaptive design stage: delta-method variances against Monte Carlo, the ranking, the checks, the
simulation on the paper's grid, and the commands' refusals."""

from __future__ import annotations

import json
from itertools import permutations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from florenz_scaling.cli import main
from florenz_scaling.design import (
    DesignError,
    LinearModel,
    Target,
    check_design,
    check_plan,
    linearise,
    parse_target,
    score,
    sweep_pool,
)
from florenz_scaling.design.replay import DEFAULT_STRATEGIES, Replayer, replay
from florenz_scaling.fit import fit_chinchilla, fit_size_data
from florenz_scaling.plan import make_plan, plan_rows
from florenz_scaling.spec import load_sweep

ROOT = Path(__file__).resolve().parents[1]
TRUE = {"E": 1.5, "A": 400.0, "alpha": 0.34, "B": 600.0, "beta": 0.4}


def chinchilla(N: np.ndarray, D: np.ndarray) -> np.ndarray:
    return TRUE["E"] + TRUE["A"] / N ** TRUE["alpha"] + TRUE["B"] / D ** TRUE["beta"]


def paper_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    spec = load_sweep(ROOT / "sweeps" / "florenz_paper.yaml")
    rows = plan_rows(spec, make_plan(spec))
    return (
        np.array([r["params"] for r in rows], float),
        np.array([r["seen_samples"] for r in rows], float),
        np.array([r["est_gpu_hours"] for r in rows], float),
    )


# ---- the variance computation against brute-force Monte Carlo ----------------------------------------------
def test_size_data_variance_and_update_match_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    P = np.repeat([1e8, 3e8, 1e9], 3)
    S = np.tile([1e6, 4e6, 1.6e7], 3)
    coef = np.array([2.3, -0.15, -0.05])
    sigma = 0.01  # in log10 L
    X = np.column_stack([np.ones(9), np.log10(P), np.log10(S)])
    fit = fit_size_data(P, S, 10 ** (X @ coef + rng.normal(0, sigma, 9)))
    model = LinearModel(
        fit.replace(params=dict(zip(("beta0", "beta1", "beta2"), coef, strict=True))),
        np.column_stack([P, S]),
        X @ coef + sigma * np.array([1, -1] * 4 + [0]) * 1.2,
    )
    model.sigma2 = sigma**2  # the noise the Monte Carlo draws, not the one estimated from one draw
    model.information = model.jacobian(np.column_stack([P, S])).T @ model.jacobian(
        np.column_stack([P, S])
    ) / sigma**2 + np.diag(1.0 / model.prior**2)
    target = Target("size-data", inputs={"N": 1e10, "D": 1e8})
    cand = np.array([[3e9, 1.6e7]])
    [s] = score(model, [target], cand, [1.0])
    Xc = np.vstack([X, [1, np.log10(3e9), np.log10(1.6e7)]])
    xt = np.array([1, 10, 8])
    preds, preds_c = [], []
    for _ in range(4000):
        y = Xc @ coef + rng.normal(0, sigma, 10)
        preds.append(10 ** (xt @ np.linalg.lstsq(X, y[:9], rcond=None)[0]))
        preds_c.append(10 ** (xt @ np.linalg.lstsq(Xc, y, rcond=None)[0]))
    assert s.var_before == pytest.approx(np.var(preds), rel=0.1)
    assert s.var_after == pytest.approx(np.var(preds_c), rel=0.1)
    assert s.var_after < s.var_before


def test_linearised_ols_covariance_is_the_fits() -> None:
    rng = np.random.default_rng(1)
    P, S = np.repeat([1e8, 3e8, 1e9], 3), np.tile([1e6, 4e6, 1.6e7], 3)
    L = 10 ** (2.3 - 0.15 * np.log10(P) - 0.05 * np.log10(S) + rng.normal(0, 0.01, 9))
    fit = fit_size_data(P, S, L)
    model = linearise(fit, pd.DataFrame({"N": P, "D": S, "loss": L}))
    assert np.allclose(model.covariance(), np.array(fit.covariance), rtol=1e-4)


def test_chinchilla_variance_and_update_match_monte_carlo() -> None:
    rng = np.random.default_rng(2)
    N = np.repeat([1e8, 3e8, 1e9, 3e9], 3)
    D = np.tile([1e9, 4e9, 1.6e10], 4)
    sigma = 0.01
    fit = fit_chinchilla(N, D, chinchilla(N, D), method="varpro")  # the noiseless optimum: the true law
    model = LinearModel(fit, np.column_stack([N, D]), np.log(chinchilla(N, D)))
    model.sigma2 = sigma**2
    J = model.jacobian(np.column_stack([N, D]))
    model.information = J.T @ J / sigma**2 + np.diag(1.0 / model.prior**2)
    target = Target("chinchilla", inputs={"N": 1e10, "D": 5e10})
    cand = np.array([[3e9, 1.6e11]])
    [s] = score(model, [target], cand, [1.0])
    Nc, Dc = np.append(N, 3e9), np.append(D, 1.6e11)
    preds, preds_c = [], []
    kw = {"method": "varpro", "varpro_grid": 8, "varpro_init": [TRUE["alpha"], TRUE["beta"]]}
    for _ in range(150):
        L = chinchilla(Nc, Dc) * np.exp(rng.normal(0, sigma, len(Nc)))
        preds.append(float(fit_chinchilla(N, D, L[:-1], **kw).predict(N=1e10, D=5e10)))
        preds_c.append(float(fit_chinchilla(Nc, Dc, L, **kw).predict(N=1e10, D=5e10)))
    # Non-linear least squares: the delta method holds to first order; 150 draws: ±25% sampling error.
    assert s.var_before == pytest.approx(np.var(preds), rel=0.4)
    assert s.var_after == pytest.approx(np.var(preds_c), rel=0.4)
    assert np.var(preds_c) < np.var(preds)


# ---- targets, checks, pools --------------------------------------------------------------------------------
def test_targets_are_parsed_and_bad_ones_refused() -> None:
    assert parse_target("P=1e9,S=2e6", "chinchilla").inputs == {"N": 1e9, "D": 2e6}
    assert parse_target("alpha", "chinchilla").param == "alpha"
    assert parse_target("C=1e12", "compute").inputs == {"C": 1e12}
    for text, law in (
        ("P=1e9", "chinchilla"),
        ("C=1e12", "chinchilla"),
        ("gamma", "chinchilla"),
        ("P=1e9,S=-1", "size-data"),
        ("P=1e9,S=1e6", "compute"),
    ):
        with pytest.raises(DesignError, match="target"):
            parse_target(text, law)
    with pytest.raises(DesignError, match="unknown law"):
        parse_target("P=1,S=1", "kaplan")


def test_check_flags_designs_that_cannot_identify_the_law() -> None:
    spec = load_sweep(ROOT / "sweeps" / "florenz_paper.yaml")
    assert check_plan(spec) == []
    N = np.array([4e8, 1e9, 3.5e9, 1.1e10, 2e10])
    fixed = pd.DataFrame({"N": N, "D": N * 0.01, "C": N * N * 0.06})
    found = {f.check for f in check_design(fixed, "chinchilla")}
    assert {"tokens-per-parameter", "condition"} <= found
    one_size = pd.DataFrame({"N": [1e9] * 4, "D": [1e6, 2e6, 4e6, 8e6], "C": [1.0, 2.0, 4.0, 8.0]})
    found = {f.check for f in check_design(one_size, "chinchilla")}
    assert {"points", "levels"} <= found


def test_sweep_pool_extends_the_grid_with_planner_costs() -> None:
    spec = load_sweep(ROOT / "sweeps" / "florenz_paper.yaml")
    pool = sweep_pool(spec)
    assert len(pool) == 4 * 6  # every size at every step count the sweep names (grid and extra runs)
    by = {c.name: c for c in pool}
    assert by["F-11.2B@30000"].cost == pytest.approx(106.963, rel=1e-4)  # plan.est_gpu_hours
    assert "F-3.5B@100000" in by


# ---- the acceptance simulation -----------------------------------------------------------------------------
def _curve(strategy: dict, grid: np.ndarray) -> np.ndarray:
    """Error at the target after spending each fraction of the pool's cost (1.0 before any fit)."""
    out = np.ones(len(grid))
    for st in strategy["steps"]:
        if None not in st["errors"]:
            out[grid >= st["fraction"] - 1e-12] = max(st["errors"])
    return out


def test_adaptive_reaches_the_full_grid_error_with_less_compute_than_random() -> None:
    N, D, cost = paper_grid()
    target = pd.DataFrame(
        {"N": [2.5e10], "D": [2e8], "loss": chinchilla(np.array([2.5e10]), np.array([2e8]))}
    )
    grid = np.linspace(0, 1, 401)
    curves: dict[str, list[np.ndarray]] = {"adaptive": [], "random": []}
    for s in range(6):  # noise seeds; random orders are averaged within each
        L = chinchilla(N, D) * np.exp(np.random.default_rng(100 + s).normal(0, 0.005, len(N)))
        pool = pd.DataFrame(
            {"run_id": [f"r{i}" for i in range(len(N))], "N": N, "D": D, "C": cost, "loss": L}
        )
        r = replay(
            pool,
            target,
            "chinchilla",
            seeds=4,
            strategies=("adaptive", "random"),
            fit_kwargs={"varpro_grid": 12},
        )
        curves["adaptive"].append(_curve(r["strategies"]["adaptive"], grid))
        curves["random"].append(np.mean([_curve(c, grid) for c in r["strategies"]["random"]["per_seed"]], 0))
    mean = {k: np.mean(v, axis=0) for k, v in curves.items()}
    full = mean["adaptive"][-1]  # every strategy ends on the full grid

    def reached(m: np.ndarray) -> float:
        ok = m <= 2 * full
        i = len(ok) - 1
        while i > 0 and ok[i - 1]:
            i -= 1
        return float(grid[i])

    assert reached(mean["adaptive"]) < reached(mean["random"])
    assert mean["adaptive"][80] < mean["random"][80]  # and a lower error at 20% of the compute


# ---- the commands ------------------------------------------------------------------------------------------
def _measured(tmp_path: Path) -> tuple[Path, Path]:
    N, D, cost = paper_grid()
    L = chinchilla(N, D) * np.exp(np.random.default_rng(0).normal(0, 0.005, len(N)))
    pts = pd.DataFrame({"N": N, "D": D, "C": cost, "loss": L})
    pts.iloc[:12].to_csv(tmp_path / "measured.csv", index=False)
    pts.assign(cost=cost).drop(columns="loss").to_csv(tmp_path / "pool.csv", index=False)
    return tmp_path / "measured.csv", tmp_path / "pool.csv"


def test_propose_ranks_a_csv_pool_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    measured, pool = _measured(tmp_path)
    out = tmp_path / "p.json"
    rc = main(
        [
            "propose",
            str(measured),
            "--law",
            "chinchilla",
            "--target",
            "P=2.5e10,S=2e8",
            "--pool",
            str(pool),
            "--k",
            "2",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    d = json.loads(out.read_text())
    assert len(d["chosen"]) == 2 and d["chosen"][1]["var_after"] <= d["chosen"][0]["var_after"] < d["var_now"]
    assert len(d["ranked"]) == 18 - 12  # measured runs are not candidates
    assert "var after" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("law", "target", "message"),
    [
        ("kaplan", "P=1,S=1", "unknown law"),
        ("chinchilla", "C=1e12", "does not fit"),
        ("compute", "P=1e9,S=1e6", "does not fit"),
    ],
)
def test_propose_refuses_what_it_cannot_handle(
    tmp_path: Path, capsys: pytest.CaptureFixture, law: str, target: str, message: str
) -> None:
    measured, pool = _measured(tmp_path)
    rc = main(["propose", str(measured), "--law", law, "--target", target, "--pool", str(pool)])
    assert rc == 2 and message in capsys.readouterr().err


def test_replay_command_and_its_refusals(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    N, D, cost = paper_grid()
    pool = pd.DataFrame({"N": N, "D": D, "C": cost, "loss": chinchilla(N, D)})
    pool.to_csv(tmp_path / "pool.csv", index=False)
    pd.DataFrame({"N": [2.5e10], "D": [2e8], "loss": chinchilla(np.array([2.5e10]), np.array([2e8]))}).to_csv(
        tmp_path / "targets.csv", index=False
    )
    out = tmp_path / "r.json"
    rc = main(
        [
            "replay",
            str(tmp_path / "pool.csv"),
            "--targets",
            str(tmp_path / "targets.csv"),
            "--law",
            "size-data",
            "--seeds",
            "2",
            "--hindsight",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    d = json.loads(out.read_text())
    assert set(d["strategies"]) == {*DEFAULT_STRATEGIES, "hindsight"}
    assert all("compute_fraction" in v for v in d["strategies"].values())
    pd.DataFrame({"C": [1e12], "loss": [2.0]}).to_csv(tmp_path / "bad.csv", index=False)
    rc = main(
        ["replay", str(tmp_path / "pool.csv"), "--targets", str(tmp_path / "bad.csv"), "--law", "chinchilla"]
    )
    assert rc == 2 and "targets: no column N, D" in capsys.readouterr().err
    rc = main(
        ["replay", str(tmp_path / "pool.csv"), "--targets", str(tmp_path / "targets.csv"), "--law", "x"]
    )
    assert rc == 2 and "unknown law" in capsys.readouterr().err


def test_plan_check_warns_on_a_thin_budget_design(capsys: pytest.CaptureFixture) -> None:
    # The budget example before it was made to bracket its minima: 3 budgets over large sizes, few per budget.
    thin = [str(ROOT / "sweeps" / "budget_example.yaml"), "-o", "sizes=[T-0.5M,T-1.3M,T-3.7M,T-10M,T-25M]"]
    thin += ["-o", "budget.compute_gmacs=[200,800,3200]", "-o", "budget.tokens_per_param=[0.5,500]"]
    assert main(["plan", *thin, "--check", "--law", "chinchilla"]) == 0
    out = capsys.readouterr().out
    assert "warning: chinchilla: points" in out and "levels" in out
    assert main(["plan", *thin, "--check", "--strict"]) == 1


def test_plan_check_finds_the_budget_example_identifies_chinchilla(capsys: pytest.CaptureFixture) -> None:
    assert main(["plan", str(ROOT / "sweeps" / "budget_example.yaml"), "--check", "--strict"]) == 0
    assert "warning" not in capsys.readouterr().out


@pytest.mark.parametrize(("seed", "tolerance"), [(0, 0.01), (0, 0.02), (3, 0.03), (2, 0.01)])
def test_hindsight_is_the_best_order_that_starts_with_the_pilot(seed: int, tolerance: float) -> None:
    N, D = np.repeat([1e7, 3e7, 1e8], 3), np.tile([2e8, 6e8, 2e9], 3)

    def law(N: np.ndarray, D: np.ndarray) -> np.ndarray:
        return 40 * N**-0.08 * D**-0.06

    L = law(N, D) * np.exp(np.random.default_rng(seed).normal(0, 0.01, len(N)))
    pool = pd.DataFrame(
        {"run_id": [f"r{i}" for i in range(len(N))], "N": N, "D": D, "C": 6 * N * D, "loss": L}
    )
    targets = pd.DataFrame({"N": [1e9], "D": [2e10], "loss": law(np.array([1e9]), np.array([2e10]))})
    r = replay(pool, targets, "size-data", tolerance=tolerance, strategies=(*DEFAULT_STRATEGIES, "hindsight"))
    fr = {s: v["compute_fraction"] for s, v in r["strategies"].items()}

    rp = Replayer(pool, targets, "size-data")
    pilot = rp.pilot()
    free = [i for i in range(len(N)) if i not in pilot]
    brute = [rp.curve("x", pilot + list(p)).compute_fraction(rp.total, tolerance) for p in permutations(free)]
    reached = [f for f in brute if f is not None]
    assert fr["hindsight"] == (pytest.approx(min(reached)) if reached else None)
    for s in ("adaptive", "variance", "d-optimal", "cheapest-first"):  # orders from the pilot
        assert fr[s] is None or fr[s] >= fr["hindsight"] - 1e-12
    assert (fr["hindsight"] is None) == (fr["cheapest-first"] is None)


def test_hindsight_refuses_a_pool_it_cannot_enumerate() -> None:
    N, D, cost = paper_grid()
    N, D, cost = np.r_[N, 1.1 * N], np.r_[D, D], np.r_[cost, 1.1 * cost]  # 36 runs
    pool = pd.DataFrame({"N": N, "D": D, "C": cost, "loss": chinchilla(N, D)})
    target = pd.DataFrame({"N": [2.5e10], "D": [2e8], "loss": [2.0]})
    with pytest.raises(DesignError, match="hindsight needs 2\\^"):
        replay(pool, target, "size-data", strategies=("hindsight",))
