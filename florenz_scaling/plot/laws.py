"""Figures of the fitted laws: loss vs compute with the Pareto frontier (paper Fig. 3) and predicted loss vs
parameters at a fixed seen-samples budget (paper Fig. 4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from florenz_scaling.fit import paper_coefficients, paper_predict
from florenz_scaling.fit.laws import PAPER_EQ1, PAPER_EQ3
from florenz_scaling.plot.data import final_points, find_fit, size_order
from florenz_scaling.plot.style import (
    COMPUTE_LABEL,
    FIT_COLOR,
    FRONTIER_COLOR,
    LOSS_LABEL,
    PAPER_COLOR,
    PARAMS_LABEL,
    count_axis,
    draw_bands,
    empty_panel,
    group_title,
    human,
    legend_outside,
    log_grid,
    loss_log_axis,
    marker_map,
    new_figure,
    note,
    size_palette,
)
from florenz_scaling.results import group_order


class ComputePlot(NamedTuple):
    """The loss-vs-compute figure and, per group, the Pareto-frontier rows it drew (for checks and tests)."""

    figure: Figure
    frontier: dict[str, pd.DataFrame]


def _legend_keys(sizes: Sequence[str], colors: dict, markers: dict) -> tuple[list, list]:
    """Legend entries explaining colour (size) and marker shape (seen samples) once for all panels."""
    handles = [Line2D([], [], ls="", marker="o", color=colors[s], mec="k", mew=0.4) for s in sizes]
    labels = list(sizes)
    handles += [Line2D([], [], ls="", marker=m, color="0.55", mec="k", mew=0.4) for m in markers.values()]
    labels += [f"S = {human(s)}" for s in markers]
    return handles, labels


def _scatter_runs(ax: Any, d: pd.DataFrame, x: str, colors: dict, markers: dict) -> None:
    """Final point of every run: colour = size, marker = seen samples; unfinished runs hollow."""
    # One collection per (size, budget, finished?) rather than per point: scatter calls dominate build time.
    for (size, s, hollow), e in d.groupby(["size", "seen_samples", "partial"], sort=False):
        c = colors[size]
        ax.scatter(
            e[x],
            e["loss"],
            marker=markers[float(s)],
            s=36,
            zorder=3,
            facecolors="none" if hollow else [c],
            edgecolors=[c] if hollow else "k",
            linewidths=1.0 if hollow else 0.4,
        )


def _paper_line(
    ax: Any, paper: dict | None, law: str, group: str, x: np.ndarray, label: str, **inputs: Any
) -> str | None:
    """The paper's fitted line, drawn without rescaling the axes (it may lie far from a toy sweep's range)."""
    coef = paper_coefficients(paper, law, group)
    if coef is None:
        return None
    y = paper_predict(coef, law, **inputs)
    lo, hi = ax.get_ylim()
    ax.autoscale(False)
    ax.plot(x, y, color=PAPER_COLOR, ls=(0, (4, 2, 1, 2)), lw=1.4, zorder=2, label=f"paper ({label})")
    if ((y >= lo) & (y <= hi)).any():
        return None
    # A toy sweep's models are orders of magnitude smaller than the paper's: say where its line went.
    where = "above" if np.median(y) > hi else "below"
    return f"paper's line is {where} this range (L = {y[0]:.3g} … {y[-1]:.3g})"


def loss_vs_compute(table: pd.DataFrame, fits: Sequence[Any] = (), paper: dict | None = None) -> ComputePlot:
    """Held-out loss vs training compute, one log-log panel per group (UC, ST, SC), as the paper's Fig. 3.

    Points are the final checkpoints of finished runs (colour = size, marker = seen samples; unfinished runs
    hollow and left out of the frontier), the gray staircase is the Pareto frontier (lowest loss so far as
    compute grows), the red line is the ``compute`` fit with 95% confidence and prediction bands, and the
    dash-dot line the paper's Eq. 1 (Table 2) when ``paper`` holds it.
    """
    from florenz_scaling.fit import pareto_frontier

    pts = final_points(table)
    groups = group_order(pts["group"]) or ["(no data)"]
    sizes = size_order(pts) if len(pts) else []
    colors, markers = size_palette(sizes), marker_map(pts["seen_samples"])
    fig = new_figure(4.3 * len(groups) + 0.6, 4.8)
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    frontier: dict[str, pd.DataFrame] = {}
    for ax, g in zip(axes, groups, strict=True):
        d = pts[pts["group"] == g]
        if d.empty:
            empty_panel(ax, "no final checkpoints yet")
            continue
        notes: list[str | None] = []
        _scatter_runs(ax, d, "compute_gmacs", colors, markers)
        done = d[~d["partial"]].sort_values("compute_gmacs", kind="stable")
        if len(done):
            mask = np.asarray(pareto_frontier(done["compute_gmacs"].to_numpy(), done["loss"].to_numpy()))
            f = done[mask].sort_values("compute_gmacs", kind="stable")
            frontier[g] = f
            # The staircase holds each frontier loss until a larger budget beats it, out to the largest run.
            xs = np.append(f["compute_gmacs"].to_numpy(), done["compute_gmacs"].max())
            ys = np.append(f["loss"].to_numpy(), f["loss"].iloc[-1])
            ax.step(
                xs,
                ys,
                where="post",
                color=FRONTIER_COLOR,
                lw=1.6,
                alpha=0.8,
                zorder=2,
                label="Pareto frontier",
            )
            ax.scatter(
                f["compute_gmacs"],
                f["loss"],
                s=110,
                facecolors="none",
                edgecolors=FRONTIER_COLOR,
                linewidths=1.4,
                zorder=4,
                gid=f"pareto-{g}",
                label="frontier point (fitted)",
            )
        c_lo, c_hi = d["compute_gmacs"].min() / 1.5, d["compute_gmacs"].max() * 1.5
        grid = log_grid(c_lo, c_hi)
        fit = find_fit(fits, PAPER_EQ1, g)
        if fit is not None:
            draw_bands(ax, fit, grid, C=grid)
            ax.plot(
                grid,
                fit.predict(C=grid),
                color=FIT_COLOR,
                lw=1.8,
                zorder=2,
                label="compute law fitted to the frontier (Eq. 1)",
            )
            notes.append(f"fit: α0 = {fit.params['alpha0']:.3g}, α1 = {fit.params['alpha1']:.3g}")
        ax.set_xscale("log")
        loss_log_axis(ax)
        ax.set_xlim(c_lo, c_hi)
        notes.append(_paper_line(ax, paper, PAPER_EQ1, g, grid, "Eq. 1, Table 2", C=grid))
        if any(notes):
            note(ax, "\n".join(n for n in notes if n))
        ax.set_title(group_title(g))
        ax.set_xlabel(COMPUTE_LABEL)
        ax.set_ylabel(LOSS_LABEL)
        ax.grid(True, which="both", alpha=0.25)
    handles, labels = _legend_keys(sizes, colors, markers)
    for ax in axes:
        h, lab = ax.get_legend_handles_labels()
        handles, labels = handles + h, labels + lab
    legend_outside(fig, handles, labels, ncol=min(len(set(labels)), 7))
    return ComputePlot(fig, frontier)


def default_budget(pts: pd.DataFrame) -> float:
    """The seen-samples budget shared by the most finished runs (the largest on ties), for Fig. 4's slice."""
    done = pts[~pts["partial"]] if len(pts[~pts["partial"]]) else pts
    counts = done.groupby("seen_samples")["run_id"].nunique()
    best = counts[counts == counts.max()]
    return float(best.index.max())


def loss_vs_params(
    table: pd.DataFrame,
    fits: Sequence[Any] = (),
    paper: dict | None = None,
    seen_samples: float | None = None,
    extrapolate: float = 30.0,
) -> Figure:
    """Predicted loss vs parameters at one seen-samples budget S from the ``size-data`` law (paper Fig. 4).

    Solid over the measured sizes, dashed when extrapolated up to ``extrapolate`` × the largest size, with
    95% confidence and prediction bands; dots are runs measured at S (within 5%). ``seen_samples`` defaults
    to the budget most runs share.
    """
    pts = final_points(table)
    groups = group_order(pts["group"]) or ["(no data)"]
    sizes = size_order(pts) if len(pts) else []
    colors = size_palette(sizes)
    S = float(seen_samples) if seen_samples is not None else (default_budget(pts) if len(pts) else np.nan)
    fig = new_figure(4.3 * len(groups) + 0.6, 4.8)
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    for ax, g in zip(axes, groups, strict=True):
        d = pts[pts["group"] == g]
        if d.empty:
            empty_panel(ax, "no final checkpoints yet")
            continue
        notes: list[str | None] = []
        at_s = d[(np.abs(np.log(d["seen_samples"] / S)) < 0.05) & ~d["partial"]]
        if len(at_s):
            ax.scatter(
                at_s["params"],
                at_s["loss"],
                c=[colors[s] for s in at_s["size"]],
                edgecolors="k",
                linewidths=0.4,
                s=40,
                zorder=4,
                gid=f"measured-{g}",
            )
        p_min, p_max = d["params"].min(), d["params"].max()
        measured, beyond = log_grid(p_min / 1.3, p_max), log_grid(p_max, p_max * extrapolate, 100)
        whole = np.concatenate([measured, beyond[1:]])
        fit = find_fit(fits, PAPER_EQ3, g)
        if fit is not None:
            draw_bands(ax, fit, whole, P=whole, S=np.full_like(whole, S))
            ax.plot(
                measured,
                fit.predict(P=measured, S=S),
                color=FIT_COLOR,
                lw=1.8,
                zorder=3,
                label="size-data law (Eq. 3) over the trained sizes",
            )
            b = fit.params
            notes.append(f"fit: β0 = {b['beta0']:.3g}, β1 = {b['beta1']:.3g}, β2 = {b['beta2']:.3g}")
            ax.plot(
                beyond,
                fit.predict(P=beyond, S=S),
                color=FIT_COLOR,
                lw=1.8,
                ls="--",
                zorder=3,
                label=f"extrapolation to {extrapolate:g}× the largest size",
            )
        count_axis(ax, "x")
        loss_log_axis(ax)
        ax.set_xlim(whole[0], whole[-1])
        notes.append(_paper_line(ax, paper, PAPER_EQ3, g, whole, "Eq. 3, Table 3", P=whole, S=S))
        if any(notes):
            note(ax, "\n".join(n for n in notes if n))
        ax.set_title(f"{group_title(g)}\nat S = {human(S)} seen samples")
        ax.set_xlabel(PARAMS_LABEL)
        ax.set_ylabel(f"Predicted {LOSS_LABEL[0].lower()}{LOSS_LABEL[1:]}")
        ax.grid(True, which="both", alpha=0.25)
    handles = [Line2D([], [], ls="", marker="o", color=colors[s], mec="k", mew=0.4) for s in sizes]
    labels = [f"{s} (measured)" for s in sizes]
    for ax in axes:
        h, lab = ax.get_legend_handles_labels()
        handles, labels = handles + h, labels + lab
    legend_outside(fig, handles, labels, ncol=4)
    return fig
