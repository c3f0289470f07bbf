"""``FitResult`` as a file: typed statistics, the JSON round trip, and fits/*.json written by older versions.

tests/data/fits_old_layout/ holds fits written by the version before the statistics became fields (every
statistic under "extras"), made by that version's ``fit_points`` on ``test_fit_io_cli.demo_table``'s SC group:
size-data and compute with a small bootstrap (and a rollout), Chinchilla by variable projection (E at its
bound), and a compute fit of two runs whose bootstrap was skipped (then a string, now a warning).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from florenz_scaling.fit import BootstrapSummary, FitResult, load_fits
from florenz_scaling.report import fits_table

OLD = Path(__file__).parent / "data" / "fits_old_layout"
MOVED = {
    "method",
    "df",
    "cov",
    "sigma2",
    "stderr",
    "pvalues",
    "r2",
    "nit",
    "at_bound",
    "warnings",
    "bootstrap",
    "rollout",
    "local_optima",
    "theta",
    "method_reason",
    "objective_kind",
}


def old(name: str) -> FitResult:
    return FitResult.from_json((OLD / f"{name}.json").read_text(encoding="utf-8"))


def test_old_ols_fit_with_bootstrap_and_rollout() -> None:
    raw = json.loads((OLD / "compute-SC.json").read_text())["extras"]
    r = old("compute-SC")
    assert r.method == "ols" and r.dof == raw["df"] and r.covariance == raw["cov"]
    assert r.residual_variance == raw["sigma2"] and r.pvalues == raw["pvalues"] and r.r2 == raw["r2"]
    assert isinstance(r.bootstrap, BootstrapSummary) and r.bootstrap.n_resamples == 6
    assert r.bootstrap.derived_interval("L@1e+12") is not None and r.interval_kind == "bootstrap"
    assert r.rollout == raw["rollout"] and r.solver["rss"] == raw["rss"]
    assert r.extras["points"] == "pareto-frontier" and r.extras["ols_ci"] == raw["ols_ci"]  # law-specific
    assert not MOVED & set(r.extras)
    # The bands still come out of the stored covariance and residual variance.
    mean, lo, hi = r.predict(C=[1e9, 1e10], interval="prediction")
    assert np.all(lo < mean) and np.all(mean < hi)


def test_old_nonlinear_fit_and_skipped_bootstrap() -> None:
    ch = old("chinchilla-SC")
    assert ch.method == "varpro" and ch.nit == 65 and ch.at_bound["E"] == "lower"
    assert ch.warnings == ["E at its lower bound"] and "auto" in ch.solver["method_reason"]
    assert ch.rollout["law"] == "chinchilla" and ch.bootstrap is None and ch.interval_kind == ""
    assert "flop_convention" in ch.extras and not MOVED & set(ch.extras)
    two = old("compute-UC")
    assert two.bootstrap is None and two.warnings == ["bootstrap skipped: only 2 runs"] and two.dof == 0
    with pytest.raises(ValueError, match="degrees of freedom"):
        two.predict(C=1e9, interval="confidence")


@pytest.mark.parametrize("name", ["compute-SC", "compute-UC", "size-data-SC", "chinchilla-SC"])
def test_old_files_are_rewritten_in_the_new_layout(name: str) -> None:
    r = old(name)
    text = r.to_json()
    d = json.loads(text)
    assert d["method"] == r.method and not MOVED & set(d["extras"])
    assert FitResult.from_json(text) == r


def test_a_sweep_with_old_fits_still_loads_and_reports(tmp_path: Path) -> None:
    shutil.copytree(OLD, tmp_path / "fits")
    (tmp_path / "fits" / "paper_coefficients.json").write_text('{"laws": {}}')
    fits = load_fits(tmp_path)
    assert [f.law for f in fits] == ["chinchilla", "compute", "compute", "size-data"]
    table = fits_table(fits, None)
    sd = table[(table["law"] == "size-data")]
    assert sd["interval"].eq("bootstrap ×8").all() and sd["p-value"].ne("").all()
    e = table[(table["law"] == "chinchilla") & (table["parameter"] == "E")]
    assert "at lower bound" in e["status"].item() and e["method"].item() == "varpro"


def test_statistics_are_fields_not_extras() -> None:
    r = FitResult(
        law="compute",
        params={"alpha0": 1.0, "alpha1": -0.1},
        ci={"alpha0": (0.5, 1.5)},
        objective=0.1,
        method="ols",
        covariance=np.eye(2),
        dof=3,
        residual_variance=np.float64(0.01),
        pvalues={"alpha0": np.float64(0.02)},
        r2=float("nan"),
        bootstrap={"n_resamples": 4, "n_ok": 3, "derived": {"L@1": {"ci": [1, 2], "median": 1.5}}},
    )
    assert r.covariance == [[1.0, 0.0], [0.0, 1.0]] and r.r2 is None
    assert isinstance(r.bootstrap, BootstrapSummary) and r.interval_kind == "bootstrap"
    assert r.bootstrap.derived_interval("L@1") == (1.0, 2.0) and r.bootstrap.derived_interval("x") is None
    assert FitResult.from_json(r.to_json()) == r
