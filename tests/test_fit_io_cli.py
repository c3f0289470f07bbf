"""Reading points, fitting a sweep directory, and the ``florenz-scaling fit`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_tables import demo_table

from florenz_scaling.cli import main
from florenz_scaling.fit import FitResult, fit_sweep, load_points, sweep_points


@pytest.fixture
def sweep(tmp_path) -> Path:
    demo_table().to_csv(tmp_path / "results.csv", index=False)
    return tmp_path


def test_sweep_points_final_checkpoints_and_group_average(sweep):
    table = pd.read_csv(sweep / "results.csv")
    g = sweep_points(table, level="group")
    assert len(g) == 9 * 3 and set(g["group"]) == {"SC", "UC", "ST"}
    assert (g["D"] == g["run_id"].str.split("-").str[1].astype(int) * 1024).all()  # final step only
    final = table[table["final"]]
    sc = final[(final["group"] == "SC") & (final["run_id"] == "s0.43b-500")]
    expect = (sc["loss"] * sc["samples"]).sum() / sc["samples"].sum()  # sample-weighted, as the paper
    got = g[(g["group"] == "SC") & (g["run_id"] == "s0.43b-500")]["loss"].item()
    assert got == pytest.approx(expect)
    pairs = load_points(sweep)
    assert len(pairs) == 9 * 6 and {"task", "lang"} <= set(pairs.columns)
    table.loc[table["run_id"] == "s0.43b-500", "partial"] = True
    assert len(sweep_points(table)) == 8 * 3  # partially evaluated rows are not fitted


def test_fit_sweep_writes_every_law_and_group_and_flags(sweep):
    written = fit_sweep(sweep, bootstrap=10, per_pair=True)
    names = {p.name for p in written}
    for law in ("compute", "size-data", "chinchilla", "saturating-compute"):
        for g in ("SC", "UC", "ST"):
            assert f"{law}-{g}.json" in names
        assert f"{law}-caption_en.json" in names
    ch = FitResult.from_json((sweep / "fits" / "chinchilla-SC.json").read_text())
    assert ch.group == "SC" and ch.n_points == 9
    assert ch.method == "varpro" and "auto" in ch.solver["method_reason"]  # few runs
    assert ch.at_bound["E"] == "lower"  # pure power-law data drive E to 0: flagged, not hidden
    assert "E at its lower bound" in ch.warnings and ch.rollout["n_test"] == 3
    pair = FitResult.from_json((sweep / "fits" / "size-data-caption_en.json").read_text())
    assert (pair.task, pair.lang, pair.group) == ("caption", "en", "SC")
    sd = json.loads((sweep / "fits" / "size-data-UC.json").read_text())
    assert set(sd["params"]) == {"beta0", "beta1", "beta2"} and set(sd["ci"]) == {"beta0", "beta1", "beta2"}
    assert sd["bootstrap"]["n_resamples"] == 10 and sd["rollout"]["law"] == "size-data"
    assert sd["method"] == "ols" and sd["dof"] == 6 and len(sd["covariance"]) == 3
    assert not {"bootstrap", "rollout", "cov", "df", "method", "warnings"} & set(sd["extras"])


def test_pairs_in_no_group_are_fitted_per_pair_only(tmp_path):
    table = demo_table()
    table.loc[(table["task"] == "translate") & (table["lang"] == "fr"), "group"] = ""  # en→fr: in no group
    table.to_csv(tmp_path / "results.csv", index=False)  # "" must survive the CSV round trip, not become NaN
    names = {p.name for p in fit_sweep(tmp_path, laws=("size-data",), bootstrap=0, per_pair=True)}
    assert {"size-data-SC.json", "size-data-UC.json", "size-data-ST.json"} <= names
    assert "size-data-translate_fr.json" in names
    assert not any(n.startswith("size-data-.") or "nan" in n for n in names)
    # Refitting a table on which a group can no longer be fitted removes that group's old fit.
    table[table["group"] != "UC"].to_csv(tmp_path / "results.csv", index=False)
    fit_sweep(tmp_path, laws=("size-data",), bootstrap=0)
    assert not (tmp_path / "fits" / "size-data-UC.json").exists()
    assert (tmp_path / "fits" / "size-data-translate_fr.json").exists()  # per-pair fits kept


def test_load_points_csv_aliases(chinchilla_epoch):
    t = load_points(chinchilla_epoch)
    assert {"N", "D", "C", "loss", "run_id"} <= set(t.columns)
    np.testing.assert_allclose(t["D"], t["C"] / (6 * t["N"]))
    assert "6" in t.attrs["flop_convention"]


def test_cli_fit_csv_chinchilla_json(tmp_path, capsys, chinchilla_epoch):
    out = tmp_path / "fit.json"
    args = ["--law", "chinchilla", "--drop-highest", "5", "--json", str(out)]
    rc = main(["fit", str(chinchilla_epoch), *args])
    assert rc == 0
    r = FitResult.from_json(out.read_text())
    assert r.params["alpha"] == pytest.approx(0.3473, rel=5e-3) and r.n_points == 240
    text = capsys.readouterr().out
    assert "chinchilla" in text and "alpha=0.347" in text


def test_cli_fit_sweep_dir_all_laws(sweep, capsys):
    assert main(["fit", str(sweep), "--bootstrap", "0"]) == 0
    out = capsys.readouterr().out
    assert "wrote 12 fit(s)" in out and "size-data" in out
    assert (sweep / "fits" / "compute-UC.json").exists()


def test_cli_fit_one_group_and_one_pair(sweep, tmp_path, capsys):
    out = tmp_path / "c.json"
    assert main(["fit", str(sweep), "--law", "compute", "--group", "SC", "--json", str(out)]) == 0
    r = FitResult.from_json(out.read_text())
    assert r.group == "SC" and r.extras["points"] == "pareto-frontier" and sum(r.used) == r.n_points
    assert (
        main(
            [
                "fit",
                str(sweep),
                "--law",
                "size-data",
                "--task",
                "translate",
                "--lang",
                "de",
                "--bootstrap",
                "20",
                "--json",
                "-",
            ]
        )
        == 0
    )
    d = json.loads(capsys.readouterr().out.split("wrote")[-1].split("\n", 1)[1])
    assert d["task"] == "translate" and d["lang"] == "de" and set(d["ci"]) == {"beta0", "beta1", "beta2"}


def test_cli_errors(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "missing.csv"), "--law", "compute"]) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("N,D\n1,2\n")
    assert main(["fit", str(bad), "--law", "compute"]) == 1
    demo = tmp_path / "points.csv"
    demo.write_text("N,D,C,loss\n1e6,1e8,6e14,3.0\n")
    assert main(["fit", str(demo), "--law", "compute", "--group", "SC"]) == 1
    assert "error" in capsys.readouterr().err


def test_a_nan_pair_leaves_its_run_out_of_the_group_fit_and_says_so(tmp_path):
    table = demo_table()
    bad = (table["run_id"] == "s1.03b-2000") & table["final"] & (table["lang"] == "en")
    table.loc[bad, "loss"] = np.nan  # a received results.csv with a NaN pair (collect would keep it out)
    table.to_csv(tmp_path / "results.csv", index=False)
    pts = sweep_points(pd.read_csv(tmp_path / "results.csv"))
    assert "s1.03b-2000" not in set(pts.loc[pts["group"] == "SC", "run_id"])  # never a half-group mean
    assert "group SC lacks caption/en" in pts.attrs["left_out"]["s1.03b-2000"]
    fit_sweep(tmp_path, laws=("compute",), bootstrap=0)
    with_nan = FitResult.from_json((tmp_path / "fits" / "compute-SC.json").read_text())
    assert any("s1.03b-2000" in w for w in with_nan.warnings)
    clean = tmp_path / "clean"
    clean.mkdir()
    demo_table()[lambda t: t["run_id"] != "s1.03b-2000"].to_csv(clean / "results.csv", index=False)
    fit_sweep(clean, laws=("compute",), bootstrap=0)
    without = FitResult.from_json((clean / "fits" / "compute-SC.json").read_text())
    for k, v in without.params.items():
        assert with_nan.params[k] == pytest.approx(v)


def test_a_table_that_lost_points_keeps_earlier_fits(sweep, capsys):
    fit_sweep(sweep, laws=("size-data",), bootstrap=0)
    before = (sweep / "fits" / "size-data-UC.json").read_text()
    table = pd.read_csv(sweep / "results.csv")
    keep = sorted(set(table["run_id"]))[:2]
    table["diverged"] = ~table["run_id"].isin(keep)  # all but two runs diverged: nothing is fittable now
    table.to_csv(sweep / "results.csv", index=False)
    assert fit_sweep(sweep, laws=("size-data",), bootstrap=0) == []
    err = capsys.readouterr().err
    assert "kept earlier size-data-UC.json" in err and "diverged" in err
    assert (sweep / "fits" / "size-data-UC.json").read_text() == before
