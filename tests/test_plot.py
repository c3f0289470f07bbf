"""The sweep figures, on a synthetic results table: labels, scales, the Pareto frontier, fits, files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.lines import Line2D
from PIL import Image
from plot_sweeps import PAIRS, PARTIAL_RUN, SIZES, STEPS, make_table, shared_sweep

from florenz_scaling.cli import main
from florenz_scaling.fit import compute_optimal, load_fits, load_paper, paper_coefficients
from florenz_scaling.plot import (
    compute_optimal_frontier,
    fit_residuals,
    load_table,
    load_train_losses,
    loss_vs_compute,
    loss_vs_params,
    loss_vs_samples,
    plot_sweep,
    training_curves,
)
from florenz_scaling.results import group_losses

REPO = Path(__file__).resolve().parents[1]
# The paper's Tables 2-3 as the repository ships them (fits/paper_coefficients.json).
PAPER = json.loads((REPO / "fits" / "paper_coefficients.json").read_text())
# In reading order, as plots/index.json lists them.
FIGURES = (
    "loss_vs_compute",
    "loss_vs_params",
    "loss_vs_samples",
    "training_curves",
    "fit_residuals",
    "compute_optimal",
)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_table(partial_run=PARTIAL_RUN)


@pytest.fixture(scope="module")
def fits() -> list:
    return load_fits(shared_sweep())


def brute_force_frontier(points: pd.DataFrame) -> set[str]:
    """Runs whose loss is below that of every other run with no more compute (the paper's staircase)."""
    out = set()
    for r in points.itertuples():
        others = points[(points["compute_gmacs"] <= r.compute_gmacs) & (points["run_id"] != r.run_id)]
        if (r.loss < others["loss"]).all():
            out.add(r.run_id)
    return out


def labelled_lines(ax, text: str) -> list[Line2D]:
    return [ln for ln in ax.get_lines() if text in str(ln.get_label())]


def test_loss_vs_compute_axes_frontier_and_fit(table: pd.DataFrame, fits: list) -> None:
    plot = loss_vs_compute(table, fits, PAPER)
    axes = plot.figure.axes
    assert [ax.get_title().split(" ")[0] for ax in axes] == ["UC", "ST", "SC"]
    finals = group_losses(table[table["final"] & ~table["partial"]])
    for ax in axes:
        g = ax.get_title().split(" ")[0]
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert "GMACs" in ax.get_xlabel() and "loss" in ax.get_ylabel().lower()
        expected = brute_force_frontier(finals[finals["group"] == g])
        assert 2 <= len(expected) < len(finals[finals["group"] == g])
        assert set(plot.frontier[g]["run_id"]) == expected
        # The frontier markers drawn are exactly those points, and the unfinished run is not among them.
        (marks,) = [c for c in ax.collections if c.get_gid() == f"pareto-{g}"]
        f = finals[(finals["group"] == g) & finals["run_id"].isin(expected)]
        drawn = sorted(map(tuple, np.round(marks.get_offsets(), 9)))
        assert drawn == sorted(zip(np.round(f["compute_gmacs"], 9), np.round(f["loss"], 9), strict=True))
        assert PARTIAL_RUN not in expected
        (fit_line,) = labelled_lines(ax, "compute law")
        fit = next(r for r in fits if r.law == "compute" and r.group == g)
        x, y = fit_line.get_data()
        np.testing.assert_allclose(y, fit.predict(C=x))
        assert len(labelled_lines(ax, "paper (Eq. 1")) == 1
        assert any("confidence band" in c.get_label() for c in ax.collections)


def test_loss_vs_compute_legend_outside_the_panels(table: pd.DataFrame, fits: list) -> None:
    fig = loss_vs_compute(table, fits, PAPER).figure
    fig.canvas.draw()
    (legend,) = fig.legends
    box = legend.get_window_extent()
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent()), "the legend covers a panel"


def test_loss_vs_compute_without_fits_or_paper(table: pd.DataFrame) -> None:
    plot = loss_vs_compute(table)
    for ax in plot.figure.axes:
        assert not labelled_lines(ax, "compute law") and not labelled_lines(ax, "paper")
        assert labelled_lines(ax, "Pareto frontier")
    assert set(plot.frontier) == {"UC", "ST", "SC"}


def test_loss_vs_params_fit_bands_and_extrapolation(table: pd.DataFrame, fits: list) -> None:
    fig = loss_vs_params(table, fits, PAPER, seen_samples=STEPS[-1] * 32, extrapolate=10)
    p_max = max(SIZES.values())
    for ax in fig.axes:
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert "Parameters" in ax.get_xlabel() and "loss" in ax.get_ylabel()
        assert "25.6k" in ax.get_title()
        (dashed,) = labelled_lines(ax, "extrapolation")
        x, _ = dashed.get_data()
        assert dashed.get_linestyle() == "--"
        assert x.min() == pytest.approx(p_max) and x.max() == pytest.approx(10 * p_max)
        labels = {c.get_label() for c in ax.collections}
        assert {"95% confidence band", "95% prediction band"} <= labels
        # Measured dots: the finished runs at that budget (the 10M run at 25.6k is unfinished).
        (dots,) = [c for c in ax.collections if str(c.get_gid()).startswith("measured-")]
        assert len(dots.get_offsets()) == len(SIZES) - 1


def test_loss_vs_samples_grid(table: pd.DataFrame) -> None:
    fig = loss_vs_samples(table)
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == sum(len(p) for p in PAIRS.values())
    for ax in panels:
        assert "Seen samples" in ax.get_xlabel() and ax.get_xscale() == "log"
        assert len(ax.get_lines()) == len(SIZES)  # one line per size
        assert max(len(ln.get_xdata()) for ln in ax.get_lines()) == len(STEPS)  # final checkpoint per run


def test_training_curves(table: pd.DataFrame) -> None:
    train = load_train_losses(shared_sweep())
    fig = training_curves(table, train)
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == len(SIZES) * len(STEPS)
    first = panels[0]
    assert first.get_title().startswith("t-0.5m-s100")
    assert "step" in first.get_xlabel() and "Loss" in first.get_ylabel()
    assert len(labelled_lines(first, "train loss")) == 1
    assert len(labelled_lines(first, "held-out")) == 6


def test_fit_residuals(table: pd.DataFrame, fits: list) -> None:
    fig = fit_residuals(table, fits)
    assert len(fig.axes) == 4 * 3  # laws × groups
    for ax in fig.axes:
        points = [c for c in ax.collections if c.get_gid() in ("used", "unused")]
        res = np.concatenate([c.get_offsets()[:, 1] for c in points])
        assert len(res) == len(SIZES) * len(STEPS) - 1  # finished runs
        assert np.abs(res).max() < 0.05  # within 12% of each law (1% noise, pure power law)
        assert ax.get_xscale() == "log"


def test_compute_optimal_frontier(table: pd.DataFrame, fits: list) -> None:
    fig = compute_optimal_frontier(table, fits)
    for ax in fig.axes:
        g = ax.get_title().split(" ")[0]
        fit = next(r for r in fits if r.law == "chinchilla" and r.group == g)
        (line,) = labelled_lines(ax, "N*(C)")
        x, y = line.get_data()
        np.testing.assert_allclose(y, compute_optimal(fit, x)["N_opt"])
        assert ax.get_yscale() == "log" and "N*" in ax.get_ylabel() and "6·N·D" in ax.get_xlabel()
        assert any("bootstrap interval" in c.get_label() for c in ax.collections)


def test_plot_sweep_writes_png_and_svg(tmp_path: Path) -> None:
    root = shutil.copytree(shared_sweep(), tmp_path / "sweep")
    written = plot_sweep(root)
    assert {p.name for p in written} == {f"{n}.{ext}" for n in FIGURES for ext in ("png", "svg")}
    for p in written:
        assert p.parent == root / "plots" and p.stat().st_size > 10_000
    with Image.open(root / "plots" / "loss_vs_compute.png") as im:
        assert im.width > 1000 and len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 50
    index = json.loads((root / "plots" / "index.json").read_text())["figures"]
    assert tuple(f["name"] for f in index) == FIGURES
    assert all(f["files"] == [f"{f['name']}.png", f"{f['name']}.svg"] for f in index)
    assert index[0]["title"] == "Held-out loss vs training compute"
    assert "Pareto frontier" in index[0]["caption"]


def test_plot_sweep_without_fits(tmp_path: Path) -> None:
    root = shutil.copytree(shared_sweep(), tmp_path / "sweep")
    shutil.rmtree(root / "fits")
    names = {p.stem for p in plot_sweep(root, formats=("png",))}
    assert names == {"loss_vs_compute", "loss_vs_params", "loss_vs_samples", "training_curves"}
    index = json.loads((root / "plots" / "index.json").read_text())["figures"]
    assert [f["name"] for f in index] == list(FIGURES[:4]) and index[0]["files"] == ["loss_vs_compute.png"]


def test_cli_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = shutil.copytree(shared_sweep(), tmp_path / "sweep")
    assert main(["plot", str(root), "--format", "png"]) == 0
    out = capsys.readouterr().out.split()
    assert len(out) == len(FIGURES) and all(Path(p).is_file() for p in out)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["plot", str(empty)]) == 1
    assert "collect" in capsys.readouterr().err


def test_paper_coefficients_are_read_from_the_repository_or_the_sweep(tmp_path: Path) -> None:
    ours = load_paper()  # the repository's fits/ (editable install, tests)
    assert paper_coefficients(ours, "compute", "UC")["alpha0"] == (1.86, 0.92, 2.80, "p<0.01")
    assert paper_coefficients(ours, "compute", "ST")["alpha1"][0] == pytest.approx(-0.18)
    assert paper_coefficients(ours, "size-data", "UC")["beta2"][:3] == (-0.04, -0.08, -0.01)
    assert paper_coefficients(ours, "chinchilla", "UC") is None
    assert paper_coefficients(None, "compute", "UC") is None
    # A sweep's own copy wins (e.g. coefficients of another paper to compare against).
    root = shutil.copytree(shared_sweep(), tmp_path / "sweep")
    other = {"laws": {"compute": {"groups": {"UC": {"params": {"alpha0": 1.0, "alpha1": -0.1}}}}}}
    (root / "fits" / "paper_coefficients.json").write_text(json.dumps(other))
    coef = paper_coefficients(load_paper(root), "compute", "UC")
    assert coef["alpha0"][0] == 1.0 and np.isnan(coef["alpha0"][1])
    assert load_fits(root) == load_fits(shared_sweep())  # not mistaken for a fit
    assert load_paper(path=tmp_path / "missing.json") is None


def test_load_table_reads_booleans_from_csv() -> None:
    t = load_table(shared_sweep())
    assert t["final"].dtype == bool and t["partial"].dtype == bool
    assert t["partial"].sum() > 0 and t["final"].sum() == len(SIZES) * len(STEPS) * 6
