"""A compute-budget sweep directory end to end without training: fit --isoflop, figures, report, next budget.

The sweep is planned for real (``sweeps/budget_example.yaml`` with six tiny sizes and four budgets, so
plan.csv carries each run's budget); its results.csv is drawn from a Chinchilla law in (P, S) with α = β,
so that compute-optimal P grows as C^0.5, with 0.3% noise, four evaluations per run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from florenz_scaling.cli import main
from florenz_scaling.fit import load_isoflop
from florenz_scaling.plan import make_plan, write_plan
from florenz_scaling.results import TABLE_COLUMNS
from florenz_scaling.spec import load_sweep
from florenz_scaling.spec.sizes import get_size

REPO = Path(__file__).resolve().parents[1]
SIZES = "[T-0.2M,T-0.5M,T-1.3M,T-3.7M,T-10M,T-25M]"
BUDGETS = "[100,400,1600,6400]"
LAW = {"E": 2.0, "A": 71.0, "B": 16.0, "alpha": 0.3, "beta": 0.3}  # A/B puts N_opt mid-ladder
PAIRS = (("caption", "en"), ("caption", "de"))


def _loss(P: float, S: float) -> float:
    return LAW["E"] + LAW["A"] / P ** LAW["alpha"] + LAW["B"] / S ** LAW["beta"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("budget-sweep")
    spec = load_sweep(
        REPO / "sweeps" / "budget_example.yaml",
        [f"sizes={SIZES}", "budget.tokens_per_param=null", f"budget.compute_gmacs={BUDGETS}"],
    )
    plan = make_plan(spec)
    write_plan(spec, plan, root)
    rng = np.random.default_rng(0)
    rows = []
    for r in plan:
        steps, gb = r.run.steps, r.run.global_batch
        for frac in (0.25, 0.5, 0.75, 1.0):
            step = max(1, round(steps * frac))
            S = step * gb
            final = step == steps
            # Before the schedule's end a checkpoint sits above the law (its lr is not annealed yet).
            for i, (task, lang) in enumerate(PAIRS):
                bump = (1.0 if final else 1.03) * (1 + 0.02 * i)
                loss = _loss(r.params, S) * bump * rng.lognormal(0, 0.003)
                rows.append(
                    {
                        "run_id": r.run_id, "size": r.size.name, "family": r.size.family, "params": r.params,
                        "trainable_params": r.trainable_params, "fwd_gmacs": r.fwd_gmacs,
                        "total_steps": steps, "global_batch": gb, "step": step, "seen_samples": S,
                        "compute_gmacs": r.compute_gmacs * step / steps, "task": task, "lang": lang,
                        "group": "SC", "loss": loss, "samples": 64, "tokens": 64 * 30, "final": final,
                        "partial": False, "diverged": False, "schedule": "cosine", "role": "run",
                        "branch_of": "",
                    }
                )  # fmt: skip
    pd.DataFrame(rows, columns=list(TABLE_COLUMNS)).to_csv(root / "results.csv", index=False)
    return root


def test_fit_isoflop_on_sweep_dir_writes_json(sweep: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "iso.json"
    assert main(["fit", str(sweep), "--isoflop", "--bootstrap", "300", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "compute-optimal N grows as C^a: a = " in text and "approach2" in text
    d = json.loads(out.read_text())
    assert [b["C"] for b in d["budgets"]] == [100.0, 400.0, 1600.0, 6400.0]  # the plan's budgets
    assert all(b["bracketed"] and b["lower"] < b["N_opt"] < b["upper"] for b in d["budgets"])
    a2 = d["exponents"]["approach2"]
    assert a2["lower"] < 0.5 < a2["upper"] and a2["upper"] - a2["lower"] < 0.2
    # S_opt grows a little slower than C^(1-a): a larger tiny size costs more GMACs per parameter·sample.
    assert a2["b_lower"] < a2["b"] < a2["b_upper"] and 0.35 < a2["b"] < 1 - a2["a"]
    assert {"approach1", "approach3"} <= set(d["exponents"])
    assert d["exponents"]["approach3"]["law"] == "chinchilla"
    assert (sweep / "fits" / "isoflop" / "SC.json").exists()
    assert load_isoflop(sweep)[0].group == "SC"


def test_isoflop_figures_and_report_headline(sweep: Path) -> None:
    from florenz_scaling.plot.isoflop import isoflop_figures
    from florenz_scaling.report import write_report

    if not load_isoflop(sweep):
        assert main(["fit", str(sweep), "--isoflop", "--bootstrap", "100"]) == 0
    figs = isoflop_figures(sweep)
    assert [f[0] for f in figs] == ["isoflop_profiles", "isoflop_approaches"]
    ax = figs[0][3].axes[0]
    assert len(ax.collections) >= 4  # each budget's runs
    html = write_report(sweep).read_text()
    res = load_isoflop(sweep)[0]
    assert res.headline() in html.replace("&#x27;", "'")
    assert "minimum" not in res.headline() and "Compute-optimal allocation" in html


def test_plan_next_budget_brackets_predicted_optimum(sweep: Path, tmp_path: Path, capsys) -> None:
    if not load_isoflop(sweep):
        assert main(["fit", str(sweep), "--isoflop", "--bootstrap", "100"]) == 0
    out = tmp_path / "next.yaml"
    assert main(["plan", str(sweep), "--next-budget", "25600", "--sizes", "4", "--next-out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "from approach2" in text and f"wrote {out}" in text
    spec = load_sweep(out)  # plan accepts it unchanged
    assert spec.budget.compute_gmacs == (25600.0,) and len(spec.sizes) == 4
    runs = make_plan(spec)
    assert {r.size.name for r in runs} == set(spec.sizes)
    assert all(r.compute_gmacs == pytest.approx(25600, rel=0.05) for r in runs)
    n_opt = load_isoflop(sweep)[0].exponents["approach2"].N_opt(25600.0)
    params = sorted(get_size(s).params for s in spec.sizes)
    assert params[0] < n_opt < params[-1]
    assert main(["plan", str(out)]) == 0  # and the plain `plan` command too


def test_pairs_in_no_group_get_a_heading_and_a_panel_title(sweep: Path, tmp_path: Path) -> None:
    """A training pair that no group lists is analysed under group "": its block in the report is headed with
    the pairs it averages (without a heading it read as part of the group above), and its panels say so."""
    import shutil

    from florenz_scaling.plot.isoflop import isoflop_profiles_figure, panel_title
    from florenz_scaling.report.isoflop import group_heading, isoflop_section

    root = tmp_path / "sweep"
    shutil.copytree(sweep, root, ignore=shutil.ignore_patterns("fits", "plots", "report.html"))
    t = pd.read_csv(root / "results.csv", keep_default_na=False)
    extra = t[t["lang"] == "en"].assign(task="translate", lang="fr", group="")
    pd.concat([t, extra]).to_csv(root / "results.csv", index=False)
    assert main(["fit", str(root), "--isoflop", "--bootstrap", "50"]) == 0
    assert [r.group for r in load_isoflop(root)] == ["SC", ""]
    html = "".join(isoflop_section(root))
    assert "<h3>SC</h3>" in html
    assert "<h3>Pairs in no group (sample-weighted mean of translate/fr)</h3>" in html
    assert group_heading(None, root) is None  # a CSV's one analysis needs no heading
    assert panel_title("") == "pairs in no group" and panel_title(None) is None
    points = pd.DataFrame({"N": [1.0], "D": [1.0], "C": [1.0], "loss": [1.0], "group": ["x"]})
    fig = isoflop_profiles_figure(points, load_isoflop(root))
    assert [ax.get_title() for ax in fig.axes] == ["SC — seen captioning", "pairs in no group"]


def test_profile_figure_with_interval_off_its_estimate_and_a_far_minimum() -> None:
    """A percentile interval that excludes its estimate is drawn (no negative error bar), and a vertex
    extrapolated decades below the sizes run is left off the axes rather than stretching them."""
    from florenz_scaling.fit.isoflop import BudgetProfile, IsoFLOP
    from florenz_scaling.plot.isoflop import isoflop_profiles_figure

    sizes = (2e5, 5e5, 1.3e6)
    centre = float(np.mean(np.log(sizes)))
    skewed = BudgetProfile(400.0, 3, sizes, N_opt=4e5, lower=4.5e5, upper=9e5, loss_min=1.0, bracketed=True,
                           fitted=True, coef=(0.0, 0.0, 0.3), centre=centre)  # fmt: skip
    far = BudgetProfile(50.0, 3, sizes, N_opt=3e2, lower=1e1, upper=2e5, loss_min=0.5, fitted=True,
                        coef=(0.3, 0.5, 0.2), centre=centre, note="minimum not bracketed")  # fmt: skip
    res = IsoFLOP([far, skewed], {}, group="SC")
    points = pd.DataFrame(
        {"N": [*sizes, *sizes], "loss": [1.6, 2.0, 3.7, 1.1, 1.0, 1.2], "C": [50.0] * 3 + [400.0] * 3,
         "group": ["SC"] * 6}
    )  # fmt: skip
    ax = isoflop_profiles_figure(points, [res]).axes[0]
    lo, hi = ax.get_xlim()
    assert sizes[0] / 10 <= lo and hi <= sizes[-1] * 10  # the far vertex (N = 300) is not on the axes
    assert ax.get_ylim()[0] > 0.6  # nor its loss
