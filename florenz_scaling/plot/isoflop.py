"""Figures of a compute-budget sweep: IsoFLOP profiles, and N_opt / D_opt vs C by the three approaches.

Pure functions of the runs' final points and the analyses ``fit --isoflop`` (or ``run``) wrote to
DIR/fits/isoflop/; ``isoflop_figures`` gives (name, title, caption, figure) for ``plot.sweep``, nothing for a
sweep without that analysis.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from florenz_scaling.fit import load_isoflop, sweep_points
from florenz_scaling.fit.isoflop import IsoFLOP, assign_budgets
from florenz_scaling.plot.style import (
    COMPUTE_LABEL,
    LOSS_LABEL,
    PARAMS_LABEL,
    count_axis,
    group_title,
    human,
    new_figure,
    note,
)

APPROACH_STYLE = {  # colour and marker of each approach, the same in both panels
    "approach2": ("#c0392b", "o", "2: IsoFLOP profiles"),
    "approach1": ("#2471a3", "s", "1: envelope"),
    "approach3": ("#1e8449", None, "3: law allocation"),
}


def panel_title(group: str | None) -> str | None:
    """A group's panel title; group "" is the mean of the pairs that no group lists; None: a CSV, untitled."""
    if group is None:
        return None
    return group_title(group) if group else "pairs in no group"


def isoflop_profiles_figure(points: Any, analyses: list[IsoFLOP]) -> Figure:
    """Loss vs N, a colour per budget: each run's final loss, the fitted parabola, and its minimum with the
    bootstrap interval of N_opt (hollow and dashed: minimum not bracketed, left out of the exponents)."""
    fig = new_figure(5.2 * len(analyses), 4.2)
    axes = np.atleast_1d(fig.subplots(1, len(analyses), squeeze=False)[0])
    for ax, res in zip(axes, analyses, strict=True):
        pts = points[points["group"] == res.group] if res.group is not None and "group" in points else points
        cs = [b.C for b in res.budgets]
        budget = assign_budgets(pts, cs) if len(pts) else np.array([])
        cmap = colormaps["viridis"]
        # A minimum far outside the sizes run (an unbracketed budget's vertex, extrapolated) is not drawn: it
        # would stretch the axes over decades where nothing was measured; the report's table gives it.
        sampled = [s for b in res.budgets for s in b.sizes]
        lo, hi = (min(sampled) / 10, max(sampled) * 10) if sampled else (0.0, math.inf)
        for i, b in enumerate(res.budgets):
            color = cmap(i / max(1, len(res.budgets) - 1))
            mine = pts[budget == b.C] if len(pts) else pts
            ax.scatter(mine["N"], mine["loss"], color=color, s=18, zorder=3, label=f"C = {b.C:.3g}")
            if b.coef is not None:
                n = np.geomspace(min(b.sizes) / 1.3, max(b.sizes) * 1.3, 100)
                ax.plot(n, b.curve(n), color=color, lw=1.2, ls="-" if b.used else "--")
            if b.N_opt is not None and b.loss_min is not None and lo <= b.N_opt <= hi:
                xerr = None
                if b.lower is not None and b.upper is not None:
                    # A percentile interval need not contain the estimate (a skewed, extrapolated vertex).
                    xerr = [[max(b.N_opt - max(b.lower, lo), 0.0)], [max(min(b.upper, hi) - b.N_opt, 0.0)]]
                ax.errorbar(
                    [b.N_opt], [b.loss_min], xerr=xerr, fmt="*", ms=11, color=color, capsize=3, zorder=4,
                    mfc=color if b.used else "white",
                )  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        count_axis(ax, "x")
        ax.set_xlabel(PARAMS_LABEL)
        ax.set_ylabel(LOSS_LABEL)
        ax.set_title(panel_title(res.group) or "IsoFLOP profiles")
        ax.legend(fontsize=7, title="budget [GMACs]" if res.group is not None else "budget", title_fontsize=7)
        e = res.exponents.get("approach2")
        if e is not None:
            note(ax, f"N_opt ∝ C^{e.a:.3f}")
    return fig


def approaches_figure(analyses: list[IsoFLOP]) -> Figure:
    """N_opt (left) and D_opt (right) vs C on log–log axes: approach 2's per-budget minima with their
    intervals, approach 1's envelope minimisers, approach 3's allocation, each approach's power law."""
    fig = new_figure(10.0, 4.0 * len(analyses))
    grid = fig.subplots(len(analyses), 2, squeeze=False)
    for row, res in zip(grid, analyses, strict=True):
        cs = [b.C for b in res.budgets] + [p["C"] for p in res.envelope]
        if not cs:
            for ax in row:
                ax.set_axis_off()
            continue
        c = np.geomspace(min(cs) / 1.5, max(cs) * 1.5, 50)
        used = [b for b in res.budgets if b.used]
        if not used and not res.envelope and not res.exponents:
            for ax in row:
                ax.set_axis_off()
            why = "no compute-optimal point:\nno bracketed budget, no envelope\nminimiser, no law allocation"
            title = panel_title(res.group) + "\n" if res.group is not None else ""
            row[0].text(0.02, 0.5, title + why, transform=row[0].transAxes, fontsize=9, va="center")
            continue
        for ax, what in zip(row, ("N_opt", "D_opt"), strict=True):
            color, marker, label = APPROACH_STYLE["approach2"]
            if used:
                y = np.array([getattr(b, what) for b in used])
                yerr = None
                if what == "N_opt" and all(b.lower is not None for b in used):
                    yerr = [y - [b.lower for b in used], [b.upper for b in used] - y]
                ax.errorbar([b.C for b in used], y, yerr=yerr, fmt=marker, color=color, capsize=3, ms=5)
            if res.envelope:
                color1, marker1, _ = APPROACH_STYLE["approach1"]
                ax.scatter([p["C"] for p in res.envelope], [p[what] for p in res.envelope],
                           color=color1, marker=marker1, s=8, alpha=0.5)  # fmt: skip
            for key, (col, _, lab) in APPROACH_STYLE.items():
                e = res.exponents.get(key)
                if e is None:
                    continue
                fn = e.N_opt if what == "N_opt" else e.D_opt
                expo = e.a if what == "N_opt" else e.b
                ax.plot(c, fn(c), color=col, lw=1.4, ls="-" if key == "approach2" else "--",
                        label=f"{lab}: ∝ C^{expo:.3f}")  # fmt: skip
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(COMPUTE_LABEL)
            ax.set_ylabel(
                "compute-optimal " + ("parameters N_opt" if what == "N_opt" else "seen samples D_opt")
            )
            title = panel_title(res.group) + " — " if res.group is not None else ""
            ax.set_title(title + ("N_opt vs C" if what == "N_opt" else "D_opt vs C"), fontsize=9)
            remarks = [f"largest budget: N_opt ≈ {human(used[-1].N_opt)}"] if what == "N_opt" and used else []
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
            else:  # no approach has an exponent: say why instead of an empty legend
                remarks.append(f"no exponent: {len(used)} bracketed budget(s), no law allocation")
            if remarks:
                note(ax, "; ".join(remarks))
    return fig


def isoflop_figures(sweep_dir: str | Path) -> list[tuple[str, str, str, Figure]]:
    """(name, title, caption, figure) of the two IsoFLOP figures; [] for a sweep without the analysis."""
    from florenz_scaling.plot.data import load_table

    analyses = load_isoflop(sweep_dir)
    if not analyses:
        return []
    points = sweep_points(load_table(sweep_dir), level="group")
    return [
        (
            "isoflop_profiles",
            "IsoFLOP profiles: the best size at each compute budget",
            "Final held-out loss of each run vs parameters, a colour per budget; the parabola in log N "
            "fitted to each budget and its minimum (star) with the 95% bootstrap interval of N_opt. Hollow "
            "star, dashed curve: the minimum is not bracketed by the sizes run, so that budget is left out "
            "of the exponents.",
            isoflop_profiles_figure(points, analyses),
        ),
        (
            "isoflop_approaches",
            "Compute-optimal N and D vs compute, three ways",
            "Approach 2: each bracketed budget's minimum (dots, with interval) and its power law; approach "
            "1: the minimisers of the envelope of all runs' evaluation points (squares); approach 3: the "
            "allocation of the fitted Chinchilla law at the runs' compute model. The legend gives each "
            "exponent; the report's headline their intervals.",
            approaches_figure(analyses),
        ),
    ]
