"""The synthetic sweep of ``plot_sweeps`` has the shape the plot, report and notebook tests rely on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from plot_sweeps import SIZES, STEPS, make_sweep, make_table

from florenz_scaling.results import TABLE_COLUMNS, group_losses, read_records

# ---- the fixture's own checks: the other tests are only as good as this data --------------------------


def test_table_schema_and_grid() -> None:
    t = make_table()
    assert tuple(t.columns) == TABLE_COLUMNS
    assert t["run_id"].nunique() == len(SIZES) * len(STEPS)
    assert t.groupby("run_id")["final"].sum().eq(6).all()  # six pairs at each run's last step
    assert sorted(t["group"].unique()) == ["SC", "ST", "UC"]
    assert 2.5 < t["loss"].min() < t["loss"].max() < 7.0


def test_loss_falls_with_size_and_samples() -> None:
    g = group_losses(make_table()[lambda d: d["final"]])
    sc = g[g["group"] == "SC"].set_index(["size", "total_steps"])["loss"]
    assert sc[("T-10M", 800)] < sc[("T-0.5M", 800)] and sc[("T-10M", 800)] < sc[("T-10M", 100)]


def test_sweep_dir_round_trip(tmp_path: Path) -> None:
    root = make_sweep(tmp_path / "sweep", partial_run="t-10m-s800", fits=False)
    assert (root / "runs" / "t-10m-s100" / "DONE").exists()
    assert not (root / "runs" / "t-10m-s800" / "DONE").exists()
    recs = read_records(root / "runs" / "t-10m-s100" / "losses.jsonl")
    assert not recs.bad_lines and {r.kind for r in recs.records} == {"train", "eval"}
    assert len(pd.read_csv(root / "plan.csv")) == 16
