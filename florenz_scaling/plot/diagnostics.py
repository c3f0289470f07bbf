"""Fit diagnostics: residuals of every fit, and the Chinchilla form's compute-optimal model size N*(C)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from florenz_scaling.fit import get_law, is_law, law_names
from florenz_scaling.plot.data import coerce_table, final_points, size_order
from florenz_scaling.plot.style import (
    COMPUTE_LABEL,
    FIT_COLOR,
    FRONTIER_COLOR,
    count_axis,
    empty_panel,
    group_title,
    legend_outside,
    log_grid,
    new_figure,
    note,
    size_palette,
)
from florenz_scaling.results import group_order

# The points-table column (fit.sweep_points: N = params, D = seen samples, C = GMACs) behind each input.
INPUT_COLUMNS = {"C": "C", "P": "N", "S": "D", "N": "N", "D": "D"}


def law_points(table: pd.DataFrame, fit: Any) -> tuple[pd.DataFrame, np.ndarray]:
    """The points a group-level fit was made on (``fit.sweep_points``: final checkpoints of finished runs),
    and which of them it used.

    ``fit.used`` is in that table's order; should the table have changed since the fit, the mask is
    recomputed (the Pareto frontier for Eq. 1, every run for the other laws).
    """
    from florenz_scaling.fit import pareto_frontier, sweep_points

    t = coerce_table(table)
    if not (t["final"] & ~t["partial"]).any():
        return pd.DataFrame(columns=["N", "D", "C", "loss", "run_id", "group", "size"]), np.zeros(0, bool)
    pts = sweep_points(t, level="group")
    d = pts[pts["group"] == fit.group].reset_index(drop=True)
    if len(fit.used) == len(d):
        used = np.asarray(fit.used, dtype=bool)
    elif get_law(fit.law).frontier:
        used = np.asarray(pareto_frontier(d["C"].to_numpy(float), d["loss"].to_numpy(float)), dtype=bool)
    else:
        used = np.ones(len(d), dtype=bool)
    return d, used


def residuals(table: pd.DataFrame, fit: Any) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """log10(measured / predicted) at the points of a group-level fit, the points, and the used mask."""
    d, used = law_points(table, fit)
    if d.empty:
        return d, np.zeros(0), used
    inputs = {k: d[INPUT_COLUMNS.get(k, k)].to_numpy(float) for k in get_law(fit.law).inputs}
    pred = np.asarray(fit.predict(**inputs), dtype=float)
    return d, np.log10(d["loss"].to_numpy(float) / pred), used


def fit_residuals(table: pd.DataFrame, fits: Sequence[Any]) -> Figure:
    """Residuals of every group-level fit vs compute: one row per law, one column per group.

    Filled markers are the points the fit used (the Pareto frontier for Eq. 1), hollow ones were left out; the
    panel title gives the RMS residual over the used points in log10 space.
    """
    pts = final_points(table)
    fits = [f for f in fits if f.group and not f.task]
    laws = [law for law in law_names() if any(f.law == law for f in fits)]
    groups = group_order(f.group for f in fits)
    if not laws:
        fig = new_figure(5, 3)
        empty_panel(fig.subplots(), "no fits yet: run `florenz-scaling fit DIR`")
        return fig
    sizes = size_order(pts) if len(pts) else []
    colors = size_palette(sizes)
    fig = new_figure(3.6 * len(groups) + 0.6, 2.6 * len(laws) + 0.8)
    axes = fig.subplots(len(laws), len(groups), squeeze=False, sharex=True)
    for r, law in enumerate(laws):
        for c, g in enumerate(groups):
            ax = axes[r][c]
            fit = next((f for f in fits if f.law == law and f.group == g), None)
            if fit is None:
                empty_panel(ax, f"no {law} fit for {g}")
                continue
            d, res, used = residuals(table, fit)
            cols = [colors.get(s, "0.5") for s in d.get("size", pd.Series([""] * len(d)))]
            for u in (True, False):
                m = used == u
                if m.any():
                    pick = [c for c, k in zip(cols, m, strict=True) if k]
                    ax.scatter(
                        d["C"][m],
                        res[m],
                        s=28,
                        zorder=3,
                        facecolors=pick if u else "none",
                        edgecolors="k" if u else pick,
                        linewidths=0.4 if u else 1.0,
                        gid="used" if u else "unused",
                    )
            ax.axhline(0.0, color=FIT_COLOR, lw=1.0)
            rms = float(np.sqrt(np.mean(res[used] ** 2))) if used.any() else math.nan
            ax.set_title(f"{law} · {g}   RMS = {rms:.3g}", fontsize="medium")
            ax.set_xscale("log")
            ax.set_ylabel("log10(L / L̂)" if c == 0 else "")
            if r == len(laws) - 1:
                ax.set_xlabel(COMPUTE_LABEL)
            ax.grid(True, which="both", alpha=0.25)
    handles = [Line2D([], [], ls="", marker="o", color=colors[s], mec="k", mew=0.4) for s in sizes]
    handles += [
        Line2D([], [], ls="", marker="o", color="0.6", mec="k", mew=0.4),
        Line2D([], [], ls="", marker="o", mfc="none", mec="0.4"),
    ]
    legend_outside(fig, handles, [*sizes, "used by the fit", "not used (off the frontier)"])
    return fig


def optimum_interval(fit: Any) -> pd.DataFrame:
    """Bootstrap percentile intervals of N*(C) stored with a Chinchilla fit, one row per budget C.

    ``fit_sweep(..., budgets=[...])`` records them as ``fit.bootstrap.derived["N_opt@<C>"]``; a fit made
    without budgets (or without a bootstrap) has none and gives an empty table.
    """
    boot = fit.bootstrap
    rows = []
    for key in boot.derived if boot is not None else ():
        ci = boot.derived_interval(key) if key.startswith("N_opt@") else None
        if ci is not None:
            rows.append((float(key.split("@", 1)[1]), *ci))
    return pd.DataFrame(sorted(rows), columns=["C", "lo", "hi"])


def compute_optimal_frontier(table: pd.DataFrame, fits: Sequence[Any]) -> Figure:
    """Compute-optimal model size N*(C) of the Chinchilla fit per group, with its bootstrap interval, over the
    sizes of the runs on the measured Pareto frontier."""
    from florenz_scaling.fit import pareto_frontier

    pts = final_points(table)
    fits = [f for f in fits if is_law(f.law) and get_law(f.law).has_allocation and f.group and not f.task]
    groups = group_order(f.group for f in fits)
    if not groups:
        fig = new_figure(5, 3)
        empty_panel(fig.subplots(), "no Chinchilla fit")
        return fig
    fig = new_figure(4.3 * len(groups) + 0.6, 4.4)
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    for ax, g in zip(axes, groups, strict=True):
        fit = next(f for f in fits if f.group == g)
        d = pts[(pts["group"] == g) & ~pts["partial"]]
        law = get_law(fit.law)
        try:
            law.allocation(fit.params, 1e20)
        except ValueError:
            empty_panel(ax, f"{g}: the {fit.law} fit has no finite\ncompute-optimal allocation")
            continue
        flops = 6.0 * d["params"].to_numpy(float) * d["seen_samples"].to_numpy(float)
        C = log_grid(flops.min() / 3, flops.max() * 30) if len(d) else log_grid(1e12, 1e20)
        iv = optimum_interval(fit)
        if len(iv):
            C = log_grid(min(C[0], iv["C"].min()), max(C[-1], iv["C"].max()))
        n_star = np.asarray(law.allocation(fit.params, C)["N_opt"], dtype=float)
        if len(iv) >= 2:
            ax.fill_between(
                iv["C"], iv["lo"], iv["hi"], color=FIT_COLOR, alpha=0.2, lw=0, label="95% bootstrap interval"
            )
        if len(iv):
            mid = np.asarray(law.allocation(fit.params, iv["C"].to_numpy())["N_opt"], dtype=float)
            ax.errorbar(
                iv["C"],
                mid,
                yerr=[mid - iv["lo"], iv["hi"] - mid],
                fmt="none",
                ecolor=FIT_COLOR,
                capsize=3,
                lw=1.0,
                label="95% bootstrap interval at the budgets fitted",
            )
        else:
            note(ax, "no interval: fit with a bootstrap and budgets\n(fit_sweep(..., budgets=[...]))")
        ax.plot(C, n_star, color=FIT_COLOR, lw=1.8, label=f"N*(C) from the {fit.law} fit")
        if len(d):
            mask = np.asarray(pareto_frontier(flops, d["loss"].to_numpy(float)), dtype=bool)
            ax.scatter(
                flops[mask],
                d["params"].to_numpy(float)[mask],
                color=FRONTIER_COLOR,
                edgecolors="k",
                linewidths=0.4,
                zorder=3,
                label="sizes on the measured frontier",
            )
        ax.set_xscale("log")
        count_axis(ax, "y")
        ax.set_title(group_title(g))
        # compute_optimal's convention (Hoffmann): C = 6·N·D with the fit's N (parameters), D (seen samples).
        ax.set_xlabel("Compute C = 6·N·D [N parameters × D seen samples]")
        ax.set_ylabel("Compute-optimal size N* [parameters]")
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    legend_outside(fig, handles, labels)
    return fig
