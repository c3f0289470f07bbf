"""A WSD sweep's trunk and branches for one size: held-out group loss vs seen samples, a panel per group.

The trunk (its segments joined; constant learning rate after warm-up) is drawn gray and dashed: its points
are not endpoints of any schedule. Each branch starts at the trunk's point where it loads the trunk's
checkpoint and decays to its budget; its final point (a marker) is the (N, S) measurement the laws fit.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from florenz_scaling.plot.data import coerce_table, size_order
from florenz_scaling.plot.style import (
    FRONTIER_COLOR,
    LOSS_LABEL,
    SAMPLES_LABEL,
    group_title,
    human,
    legend_outside,
    new_figure,
    set_scale,
    size_palette,
)
from florenz_scaling.results import group_losses, group_order


def wsd_size(table: pd.DataFrame) -> str | None:
    """The size whose trunk and branches are drawn: the largest with a trunk and a branch, else None."""
    if "role" not in table.columns:
        return None
    t = coerce_table(table)
    t["role"] = t["role"].fillna("").astype(str)
    sizes = [s for s in size_order(t) if {"trunk", "branch"} <= set(t.loc[t["size"] == s, "role"])]
    return sizes[-1] if sizes else None


def wsd_curves(table: pd.DataFrame, size: str | None = None) -> Figure | None:
    """Trunk and branch curves of ``size`` (default ``wsd_size``); None when the table has no WSD size."""
    size = size or wsd_size(table)
    if size is None:
        return None
    t = coerce_table(table)
    t = t[(t["size"] == size) & ~t["partial"]].copy()
    t["role"] = t["role"].fillna("").astype(str)
    g = group_losses(t)
    groups = group_order(g["group"])
    fig = new_figure(3.6 * max(1, len(groups)) + 0.6, 3.4)
    axes = fig.subplots(1, max(1, len(groups)), squeeze=False)[0]
    branches = sorted(
        set(g.loc[g["role"] == "branch", "run_id"]),
        key=lambda r: int(g.loc[g["run_id"] == r, "total_steps"].iloc[0]),
    )
    colors = size_palette(branches)
    for ax, group in zip(axes, groups, strict=False):
        d = g[g["group"] == group]
        trunk = d[d["role"] == "trunk"].sort_values("seen_samples")
        ax.plot(trunk["seen_samples"], trunk["loss"], "--", color=FRONTIER_COLOR, lw=1.4)
        for run_id in branches:
            b = d[d["run_id"] == run_id].sort_values("seen_samples")
            if b.empty:
                continue
            # From the trunk point it branches at (the trunk segment's last evaluation), so the line joins.
            start = trunk[trunk["run_id"] == b["branch_of"].iloc[0]].tail(1)
            line = pd.concat([start, b])
            ax.plot(line["seen_samples"], line["loss"], "-", color=colors[run_id], lw=1.6)
            end = b[b["final"]]
            ax.plot(end["seen_samples"], end["loss"], "o", color=colors[run_id], ms=5)
        ax.set_title(group_title(group))
        ax.set_xlabel(SAMPLES_LABEL)
        ax.set_ylabel(LOSS_LABEL)
        set_scale(ax, "x", d["seen_samples"], count=True)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], ls="--", color=FRONTIER_COLOR, label="trunk (constant lr)")]
    for run_id in branches:
        steps = g.loc[g["run_id"] == run_id]
        samples = int(steps["total_steps"].iloc[0]) * int(steps["global_batch"].iloc[0])
        label = f"branch to S={human(samples)}"
        handles.append(Line2D([], [], color=colors[run_id], marker="o", label=label))
    legend_outside(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"{size}: WSD trunk and branches")
    return fig
