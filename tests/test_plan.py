"""Planning: the paper's grid, compute budgets, stable ids, and the plan CLI's files."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_sweeps import TINY_DEMO

from florenz_scaling.cli import main
from florenz_scaling.plan import PLAN_COLUMNS, make_plan, read_plan, write_plan
from florenz_scaling.spec import load_sweep
from florenz_scaling.spec.sizes import compute_gmacs

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"


def test_paper_sweep_plan_files(tmp_path: Path) -> None:
    assert main(["plan", str(SWEEPS / "florenz_paper.yaml"), "--out", str(tmp_path)]) == 0
    rows = read_plan(tmp_path)
    assert len(rows) == 18
    grid = [r for r in rows if int(r["steps"]) in (500, 2000, 5000, 10000)]
    assert len(grid) == 16
    assert {int(r["seen_samples"]) for r in grid} == {512_000, 2_048_000, 5_120_000, 10_240_000}
    expected = {"F-0.4B": 0.43e9, "F-1.0B": 1.03e9, "F-3.5B": 3.48e9, "F-11.2B": 11.22e9}
    for r in rows:
        assert abs(int(r["params"]) / expected[r["size"]] - 1) < 0.03
        ratio = int(r["trainable_params"]) / int(r["params"])
        c = int(r["seen_samples"]) * float(r["fwd_gmacs"]) * (1 + ratio)
        assert float(r["compute_gmacs"]) == pytest.approx(c, rel=1e-12)
        assert float(r["est_gpu_hours"]) > 0
    assert {(r["size"], int(r["steps"])) for r in rows} >= {("F-0.4B", 100_000), ("F-11.2B", 30_000)}
    for col in (
        "run_id",
        "size",
        "params",
        "trainable_params",
        "fwd_gmacs",
        "steps",
        "global_batch",
        "seen_samples",
        "compute_gmacs",
        "est_gpu_hours",
    ):
        assert col in rows[0]
    resolved = load_sweep(tmp_path / "sweep.yaml")
    assert resolved == load_sweep(SWEEPS / "florenz_paper.yaml")


def test_read_plan_returns_what_write_plan_wrote(tmp_path: Path) -> None:
    spec = load_sweep(TINY_DEMO)
    plan = make_plan(spec)
    write_plan(spec, plan, tmp_path)
    rows = read_plan(tmp_path)
    assert [r["run_id"] for r in rows] == [r.run_id for r in plan]
    assert list(rows[0]) == list(PLAN_COLUMNS)
    for row, r in zip(rows, plan, strict=True):
        assert float(row["compute_gmacs"]) == r.compute_gmacs  # floats are written to read back exactly
        assert int(row["steps"]) == r.run.steps and row["budget_gmacs"] == ""
    with pytest.raises(FileNotFoundError):
        read_plan(tmp_path / "nothing-planned")


def test_run_ids_are_stable_and_depend_on_the_spec() -> None:
    a = [r.run_id for r in make_plan(load_sweep(TINY_DEMO))]
    b = [r.run_id for r in make_plan(load_sweep(TINY_DEMO))]
    c = [r.run_id for r in make_plan(load_sweep(TINY_DEMO, ["train.lr=2e-4"]))]
    assert a == b and len(set(a)) == len(a)
    assert set(a).isdisjoint(c)
    renamed = [r.run_id for r in make_plan(load_sweep(TINY_DEMO, ["name=other"]))]
    assert renamed == a, "the sweep's name does not change what a run computes"


def test_duplicate_runs_are_merged() -> None:
    spec = load_sweep(TINY_DEMO, ["extra_runs=[{size: T-0.5M, steps: 250}]"])  # already in the grid
    assert len(make_plan(spec)) == 9


def test_seen_samples_grid() -> None:
    spec = load_sweep(TINY_DEMO, ["grid={seen_samples: [160, 320], global_batch: 16}"])
    assert sorted({r.run.steps for r in make_plan(spec)}) == [10, 20]


def test_budget_mode_spends_each_budget() -> None:
    spec = load_sweep(SWEEPS / "budget_example.yaml", ["budget.tokens_per_param=null"])
    plan = make_plan(spec)
    assert len(plan) == len(spec.sizes) * len(spec.budget.compute_gmacs)
    for r in plan:
        per_step = r.fwd_gmacs * (1 + r.trainable_params / r.params) * r.run.global_batch
        # rounded to whole steps: within half a step of the budget
        assert abs(r.compute_gmacs - r.budget_gmacs) <= per_step / 2 + 1e-9
        assert r.compute_gmacs == pytest.approx(
            compute_gmacs(r.seen_samples, r.fwd_gmacs, r.params, r.trainable_params)
        )


def test_budget_window_drops_sizes_outside_it() -> None:
    full = make_plan(load_sweep(SWEEPS / "budget_example.yaml", ["budget.tokens_per_param=null"]))
    windowed = make_plan(load_sweep(SWEEPS / "budget_example.yaml", ["budget.tokens_per_param=[1, 10]"]))
    assert 0 < len(windowed) < len(full)
    for r in windowed:
        assert 1 <= r.seen_samples * r.size.target_len / r.params <= 10


def test_plan_cli_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(TINY_DEMO)]) == 0
    out = capsys.readouterr().out
    assert "sweep demo: 9 runs" in out and "GPU-hours" in out
