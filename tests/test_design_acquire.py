"""One criterion everywhere: ``propose`` (and so ``run --adaptive``) chooses what replay's ``adaptive`` buys;
the chinchilla adapter of the fast refits (``design.formula``) fits what the built-in recipe fits; the
tolerance replay runs on those refits."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from florenz_scaling.design import Candidate, Target
from florenz_scaling.design.budget import make_task, run_repeat, start_set
from florenz_scaling.design.lsq import LawFitter
from florenz_scaling.design.propose import ADAPTIVE_METHOD, propose
from florenz_scaling.design.replay import replay
from florenz_scaling.fit import fit_chinchilla, get_law
from florenz_scaling.fit.laws import ExprLaw, Param, register, unregister

TRUE = {"E": 1.8, "A": 400.0, "alpha": 0.34, "B": 600.0, "beta": 0.3}
RAW = "raw-chinchilla-test"


def law_loss(N: np.ndarray, D: np.ndarray) -> np.ndarray:
    return TRUE["E"] + TRUE["A"] * N ** -TRUE["alpha"] + TRUE["B"] * D ** -TRUE["beta"]


def pool_table(seed: int = 0) -> pd.DataFrame:
    N, R = np.meshgrid([2e7, 5e7, 1e8, 3e8, 8e8, 2e9], [5.0, 10.0, 20.0, 40.0, 80.0, 160.0], indexing="ij")
    N, D = N.ravel(), (N * R).ravel()
    L = law_loss(N, D) * np.exp(np.random.default_rng(seed).normal(0, 0.004, len(N)))
    return pd.DataFrame({"N": N, "D": D, "C": 6 * N * D, "loss": L})


@pytest.fixture
def raw_law() -> Iterator[str]:
    """Chinchilla's formula fitted by least squares of the raw loss: the objective ScaleBench's replay fits,
    so propose (which fits a law by its own objective) and replay fit the same thing."""
    law = ExprLaw(
        RAW,
        ("N", "D"),
        (
            Param("E", (0.1, 10.0), scale="log"),
            Param("A", (1.0, 1e6), scale="log"),
            Param("B", (1.0, 1e6), scale="log"),
            Param("alpha", (0.01, 1.5)),
            Param("beta", (0.01, 1.5)),
        ),
        expr="E + A * N**(-alpha) + B * D**(-beta)",
        response="raw",
    )
    register(law)
    yield RAW
    unregister(RAW)


def test_propose_chooses_replays_first_adaptive_purchase(raw_law: str) -> None:
    pool = pool_table()
    target = {"N": 1.6e10, "D": 3.2e11}
    targets = pd.DataFrame({k: [v] for k, v in target.items()} | {"loss": law_loss(*target.values())})
    cost = 6 * pool["N"].to_numpy() * pool["D"].to_numpy()
    task = make_task(get_law(raw_law), pool, targets, cost)
    start = start_set(cost, task.n_params)
    rep = run_repeat(task, "adaptive", (1.0,), seed=0)
    first = rep["order"][len(start)]

    measured = pool.iloc[start]
    cands = [
        Candidate(f"r{i}", r.N, r.D, r.C, float(cost[i]))
        for i, r in enumerate(pool.itertuples())
        if i not in start
    ]
    prop = propose(measured, raw_law, Target(raw_law, inputs=target), cands, k=1)
    assert prop.method == ADAPTIVE_METHOD
    assert prop.chosen[0][0].name == f"r{first}" == prop.ranked[0][0].name
    # The ranking is the criterion's score, and the expected variance after the choice is below now's.
    scores = [s.score for _, s in prop.ranked]
    assert scores == sorted(scores, reverse=True)
    assert prop.chosen[0][1].var_after < prop.var_now


@pytest.mark.parametrize(("rows", "method"), [(slice(None), "lbfgs"), (slice(0, 36, 3), "varpro")])
def test_the_chinchilla_adapter_fits_what_the_builtin_recipe_fits(rows: slice, method: str) -> None:
    """The replay's recipe is ``method="auto"``: Huber on log residuals from 20 points (L-BFGS-B from
    Hoffmann's grid), variable projection's relative SSE below; the adapter resolves to the same."""
    t = pool_table(seed=3).iloc[rows]
    N, D, L = (t[k].to_numpy() for k in ("N", "D", "loss"))
    law = get_law("chinchilla")
    f = LawFitter(law, {"N": N, "D": D}, L)
    assert f.objective_for(len(L)) == ("huber-log" if method == "lbfgs" else "rel-sse")
    fits = f.fit(np.arange(len(L)), f.random_starts(np.random.default_rng(0), 64))
    ours = dict(zip(law.param_names, f.natural(fits.best)[0], strict=True))
    ref = fit_chinchilla(N, D, L, method="auto")
    assert ref.method == method
    for k in law.param_names:
        assert ours[k] == pytest.approx(ref.params[k], rel=1e-3), k
    assert fits.ssr[0] == pytest.approx(ref.objective, rel=1e-5)


def test_the_tolerance_replay_of_chinchilla_runs_on_the_fast_refits() -> None:
    pool = pool_table(seed=1)
    targets = pd.DataFrame(
        {"N": [1.6e10], "D": [3.2e11], "loss": law_loss(np.array([1.6e10]), np.array([3.2e11]))}
    )
    r = replay(pool, targets, "chinchilla", tolerance=0.02, seeds=2)
    assert r["engine"] == "lsq"
    fr = {s: v["compute_fraction"] for s, v in r["strategies"].items()}
    assert fr["full"] == 1.0  # the whole pool predicts the target within 2 %
    assert fr["adaptive"] is not None and fr["adaptive"] < 1.0
    builtin = replay(pool, targets, "chinchilla", tolerance=0.02, strategies=("full",), engine="builtin")
    e_fast = r["strategies"]["full"]["steps"][0]["errors"][0]
    e_ref = builtin["strategies"]["full"]["steps"][0]["errors"][0]
    assert e_fast == pytest.approx(e_ref, abs=1e-4)  # the same fit, so the same error


def test_proposes_interval_has_the_spread_of_refits_on_fresh_noise() -> None:
    """The sd ``propose`` shows (and ``run --adaptive --width`` stops on) is the residual-noise one, not the
    criterion's prior-heavy σ²: over fresh noise draws it is the spread of the estimate within a factor 2."""
    base = pool_table()
    measured = base[(base["N"] <= 3e8)].reset_index(drop=True)  # 16 runs, target far beyond them
    cand = [Candidate("big", 2e9, 4e10, 6 * 2e9 * 4e10, 1.0)]
    target = Target("chinchilla", inputs={"N": 2e9, "D": 4e10})
    true = law_loss(measured["N"].to_numpy(), measured["D"].to_numpy())
    est, sd = [], []
    for seed in range(24):
        noisy = measured.assign(
            loss=true * np.exp(np.random.default_rng(50 + seed).normal(0, 0.004, len(true)))
        )
        prop = propose(noisy, "chinchilla", target, cand, k=1)
        est.append(prop.estimate)
        sd.append(np.sqrt(prop.var_now))
    ratio = float(np.median(sd) / np.std(est))
    assert 0.5 < ratio < 2.0, ratio
