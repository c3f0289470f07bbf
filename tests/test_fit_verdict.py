"""Verdicts from measured diagnostics: the demo's Chinchilla fits (E at its bound, unbounded intervals) are
not identifiable and left out of the headline; the Epoch Chinchilla fit is reliable; verdicts round-trip and
old files without one still load (the verdict is then assessed from the stored fields)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fit_tables import demo_table

from florenz_scaling.fit import (
    FitResult,
    Verdict,
    assess,
    build_headline,
    fit_points,
    fit_sweep,
    headline_lines,
    load_fits,
    load_gaps,
    load_joint,
    load_points,
    verdict_of,
)

OLD = Path(__file__).parent / "data" / "fits_old_layout"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    demo_table().to_csv(root / "results.csv", index=False)
    fit_sweep(root, bootstrap=30)
    return root


def test_demo_chinchilla_fits_are_not_identifiable_and_left_out(demo: Path) -> None:
    fits = load_fits(demo)
    assert len(fits) == 12  # the joint and gap files are not single fits
    for f in (f for f in fits if f.law == "chinchilla"):
        v = f.verdict
        assert v.level == "not identifiable" and not v.shown
        assert "E" in v.diagnostics["at_bound"] and any("decades" in r for r in v.reasons)
    h = build_headline(fits, joint=load_joint(demo), gaps=load_gaps(demo))
    assert {(s["law"], s["group"]) for s in h["skipped"]} >= {("chinchilla", g) for g in ("SC", "UC", "ST")}
    text = "\n".join(headline_lines(h))
    assert "not shown (" in text and "chinchilla SC: " in text
    shown = [line for line in text.splitlines() if line.startswith("  SC:")]
    assert shown and "E=" not in shown[0]  # the compute exponent, not a Chinchilla parameter
    assert {r["group"] for r in h["rows"]} == {"SC", "UC", "ST"}
    assert all(r["exponent"] is not None for r in h["rows"] if r["verdict"] != "not identifiable")


def test_epoch_chinchilla_fit_is_reliable(chinchilla_epoch) -> None:
    t = load_points(chinchilla_epoch).sort_values("loss", kind="stable").iloc[:-5]
    r = fit_points(t, "chinchilla", bootstrap=60, method="lbfgs")
    v = r.verdict
    assert v.level == "reliable", v.text()
    d = v.diagnostics
    assert d["points_per_param"] == 48 and d["design_condition"] < 100 and d["at_bound"] == []
    assert d["rollout_error"] < 0.05 and max(d["interval_width"].values()) < 1
    back = FitResult.from_json(r.to_json())
    assert back == r and isinstance(back.verdict, Verdict)


def test_old_files_without_a_verdict_load_and_get_one_computed() -> None:
    raw = json.loads((OLD / "chinchilla-SC.json").read_text())
    assert "verdict" not in raw
    r = FitResult.from_json(json.dumps(raw))
    assert r.verdict is None and verdict_of(r).level == "not identifiable"
    size_data = FitResult.from_json((OLD / "size-data-SC.json").read_text())
    assert verdict_of(size_data).level in ("reliable", "weak")


def test_reasons_name_the_measured_diagnostics() -> None:
    r = FitResult(
        law="compute",
        params={"alpha0": 1.0, "alpha1": -0.1},
        ci={"alpha1": [-1.5, 0.9]},
        n_points=3,
        dof=1,
        method="ols",
        covariance=[[1.0, 0.0], [0.0, 1.0]],
        status="converged",
        rollout={"mean_abs_rel_error": 0.2},
    )
    v = assess(r)
    assert v.level == "not identifiable"  # interval 24× the estimate
    assert any("24×" in x for x in v.reasons) and any("20%" in x for x in v.reasons)
    assert any("1.5 points per parameter" in x for x in v.reasons)
    with pytest.raises(ValueError, match="verdict must be one of"):
        Verdict(level="great")
