"""Figures of the generation metrics: Fig. 6 analogue (metric vs size, prefix vs none), metric vs compute."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.lines import Line2D
from plot_sweeps import make_table, metrics_for, shared_sweep, sweep_with_metrics

from florenz_scaling.fit import load_metric_fits
from florenz_scaling.fit.metrics import metric_points
from florenz_scaling.plot import plot_sweep
from florenz_scaling.plot.metrics import metric_figures, metric_vs_compute, metric_vs_size


@pytest.fixture(scope="module")
def points() -> pd.DataFrame:
    return metric_points(metrics_for(make_table(partial_run="t-10m-s800")))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sweep_with_metrics(tmp_path_factory.mktemp("plot-metrics"))


def _lines(ax: object) -> list[Line2D]:
    return [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]  # type: ignore[attr-defined]


def test_metric_vs_size_a_line_per_decoding_prefix_dashed(points: pd.DataFrame) -> None:
    fig = metric_vs_size(points)
    axes = np.array(fig.axes).reshape(2, 3)  # cider, attr_acc × UC, ST, SC
    assert [ax.get_title().split(" — ")[0] for ax in axes[0]] == ["UC", "ST", "SC"]
    assert axes[0, 0].get_ylabel() == "CIDEr" and axes[1, 0].get_ylabel() == "attribute accuracy"
    uc = {ln.get_label(): ln for ln in _lines(axes[0, 0])}
    assert set(uc) == {"greedy", "beam4", "greedy+prefix", "beam4+prefix"}
    assert uc["greedy+prefix"].get_linestyle() == "--" and uc["greedy"].get_linestyle() == "-"
    assert set(ln.get_label() for ln in _lines(axes[0, 1])) == {"greedy", "beam4"}  # ST: no prefix
    # At the largest budget with two sizes or more (the 10M run at 800 steps is unfinished): 3 sizes.
    x, y = uc["greedy+prefix"].get_data()
    assert len(x) == 3 and np.all(np.diff(x) > 0) and np.all(np.diff(y) > 0)  # rises with size
    assert axes[0, 0].get_xscale() == "log" and "S = 25.6k" in axes[0, 0].get_title()
    assert fig.legends and len(fig.legends[0].get_texts()) == 4


def test_metric_vs_compute_draws_both_forms_with_rollout_errors(sweep: Path) -> None:
    pts = metric_points(pd.read_csv(sweep / "metrics.csv", keep_default_na=False))
    fig = metric_vs_compute(pts, load_metric_fits(sweep), metrics=["cider"])
    axes = fig.axes
    assert len(axes) == 3
    assert axes[0].get_title().endswith("· beam4+prefix") and axes[1].get_title().endswith("· beam4")
    for ax in axes:
        solid = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
        dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert len(solid) == 1 and len(dashed) == 1  # direct and two-stage curves
        assert np.all(np.isfinite(solid[0].get_ydata())) and np.all(np.asarray(dashed[0].get_ydata()) <= 1000)
        texts = " ".join(t.get_text() for t in ax.texts)
        assert "direct α = " in texts and "rollout |err|: direct " in texts and "two-stage" in texts
        assert ax.get_xscale() == "log" and len(ax.collections) == 4  # a scatter per size


def test_figures_without_metrics_or_fits(points: pd.DataFrame) -> None:
    fig = metric_vs_compute(points, [])
    assert all(not ax.get_lines() for ax in fig.axes) and len(fig.axes) == 6  # points only, no curves
    empty = metric_vs_size(points.iloc[:0])
    assert "no generation metrics" in " ".join(t.get_text() for t in empty.axes[0].texts)


def test_plot_sweep_adds_the_metric_figures_only_with_metrics_csv(sweep: Path, tmp_path: Path) -> None:
    root = shutil.copytree(sweep, tmp_path / "sweep")
    names = [p.stem for p in plot_sweep(root, formats=("png",))]
    assert names[-2:] == ["metric_vs_size", "metric_vs_compute"]
    index = json.loads((root / "plots" / "index.json").read_text())["figures"]
    assert [f["name"] for f in index][-2:] == ["metric_vs_size", "metric_vs_compute"]
    assert "Fig. 6" in index[-2]["title"] and "rollout" in index[-1]["caption"]
    assert metric_figures(shared_sweep()) == []  # no metrics.csv: no figures, nothing else changes
