"""Curves of the raw measurements: loss vs seen samples per (task, language) pair, and training curves."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from florenz_scaling.plot.data import coerce_table, pair_order, size_order
from florenz_scaling.plot.style import (
    LOSS_LABEL,
    SAMPLES_LABEL,
    STEP_LABEL,
    TRAIN_LOSS_LABEL,
    empty_panel,
    human,
    legend_outside,
    loss_log_axis,
    new_figure,
    pair_palette,
    set_scale,
    size_palette,
)
from florenz_scaling.results import group_order


def _size_curve(d: pd.DataFrame) -> pd.DataFrame:
    """Loss vs seen samples for one size and pair.

    A grid sweep trains one run per budget, so the curve joins each run's final checkpoint: intermediate
    checkpoints of a cosine run are not valid points for a smaller budget. A size with a single run
    (a compute-budget sweep) falls back to that run's checkpoints.
    """
    finals = d[d["final"] & ~d["partial"]]
    if finals["run_id"].nunique() >= 2:
        return finals.sort_values("seen_samples")
    return d[~d["partial"]].sort_values("seen_samples")


def loss_vs_samples(table: pd.DataFrame) -> Figure:
    """A grid of held-out loss vs seen samples, one row per group and one panel per (task, language) pair,
    one line per model size."""
    t = coerce_table(table)
    groups = group_order(t["group"])
    pairs = pair_order(t, groups)
    if not pairs:
        fig = new_figure(5, 3)
        empty_panel(fig.subplots(), "no held-out losses collected yet")
        return fig
    ncols = max(sum(1 for p in pairs if p[0] == g) for g in groups)
    fig = new_figure(3.4 * ncols + 0.6, 2.9 * len(groups) + 0.6)
    axes = fig.subplots(len(groups), ncols, squeeze=False)
    sizes = size_order(t)
    colors = size_palette(sizes)
    for r, g in enumerate(groups):
        row_pairs = [p for p in pairs if p[0] == g]
        for c in range(ncols):
            ax = axes[r][c]
            if c >= len(row_pairs):
                ax.set_axis_off()
                continue
            _, task, lang = row_pairs[c]
            d = t[(t["group"] == g) & (t["task"] == task) & (t["lang"] == lang)]
            for size in sizes:
                curve = _size_curve(d[d["size"] == size])
                if curve.empty:
                    continue
                ax.plot(
                    curve["seen_samples"],
                    curve["loss"],
                    marker="o",
                    ms=3.5,
                    lw=1.4,
                    color=colors[size],
                    label=size,
                )
            # An unfinished run's latest checkpoint: shown, but not joined to the finished runs' curve.
            late = d[d["final"] & d["partial"]]
            for row in late.itertuples(index=False):
                ax.scatter(
                    row.seen_samples,
                    row.loss,
                    s=22,
                    facecolors="none",
                    edgecolors=[colors[row.size]],
                    zorder=3,
                    label="unfinished run (latest checkpoint)",
                )
            set_scale(ax, "x", d["seen_samples"], count=True)
            loss_log_axis(ax)
            ax.set_title(f"{g}: {task} · {lang}", fontsize="medium")
            ax.set_xlabel(SAMPLES_LABEL)
            ax.set_ylabel(LOSS_LABEL if c == 0 else "")
            ax.grid(True, which="both", alpha=0.25)
    handles = [Line2D([], [], color=colors[s], marker="o", ms=3.5) for s in sizes]
    labels = [f"size {s}" for s in sizes]
    if t["partial"].any():
        handles.append(Line2D([], [], ls="", marker="o", mfc="none", mec="0.4", ms=4.5))
        labels.append("unfinished run (latest checkpoint)")
    legend_outside(fig, handles, labels)
    return fig


def training_curves(
    table: pd.DataFrame,
    train: pd.DataFrame | None = None,
    run_ids: Sequence[str] | None = None,
    ncols: int = 4,
) -> Figure:
    """One panel per run: the training loss (black) and the held-out loss of every pair (coloured) vs step.

    ``train`` holds the runs' training-loss records (columns run_id, step, loss; see
    ``plot_data.load_train_losses``); without it only held-out losses are drawn.
    """
    t = coerce_table(table)
    train = train if train is not None else pd.DataFrame(columns=["run_id", "step", "loss"])
    runs = list(run_ids) if run_ids is not None else _runs_in_order(t, train)
    if not runs:
        fig = new_figure(5, 3)
        empty_panel(fig.subplots(), "no runs with losses yet")
        return fig
    pairs = [(task, lang) for _, task, lang in pair_order(t, group_order(t["group"]))]
    colors = pair_palette(pairs)
    ncols = min(ncols, len(runs))
    nrows = math.ceil(len(runs) / ncols)
    fig = new_figure(3.3 * ncols + 0.4, 2.7 * nrows + 0.7)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(runs) :]:
        ax.set_axis_off()
    for ax, rid in zip(axes, runs, strict=False):
        d = t[t["run_id"] == rid]
        tr = train[train["run_id"] == rid].sort_values("step")
        if len(tr):
            ax.plot(tr["step"], tr["loss"], color="k", lw=0.9, alpha=0.75, label="train loss")
        for task, lang in pairs:
            e = d[(d["task"] == task) & (d["lang"] == lang)].sort_values("step")
            if len(e):
                ax.plot(
                    e["step"],
                    e["loss"],
                    color=colors[(task, lang)],
                    marker="o",
                    ms=2.5,
                    lw=1.1,
                    label=f"held-out {task} · {lang}",
                )
        steps = np.concatenate([tr["step"].to_numpy(float), d["step"].to_numpy(float)])
        losses = np.concatenate([tr["loss"].to_numpy(float), d["loss"].to_numpy(float)])
        set_scale(ax, "x", steps)
        set_scale(ax, "y", losses)
        ax.set_title(_run_title(d, rid), fontsize="small")
        ax.set_xlabel(STEP_LABEL, fontsize="small")
        ax.set_ylabel(TRAIN_LOSS_LABEL, fontsize="small")
        ax.tick_params(labelsize="small")
        ax.grid(True, alpha=0.25)
    handles, labels = [], []
    for ax in axes:
        h, lab = ax.get_legend_handles_labels()
        handles, labels = handles + h, labels + lab
    legend_outside(fig, handles, labels, ncol=min(len(set(labels)), 5))
    return fig


def _runs_in_order(t: pd.DataFrame, train: pd.DataFrame) -> list[str]:
    """Run ids ordered by size, then budget; runs with only training records last."""
    if len(t):
        meta = t.groupby("run_id").agg(params=("params", "max"), steps=("total_steps", "max"))
        ordered = list(meta.sort_values(["params", "steps"], kind="stable").index)
    else:
        ordered = []
    extra = sorted(set(train["run_id"]) - set(ordered)) if len(train) else []
    return [str(r) for r in ordered] + extra


def _run_title(d: pd.DataFrame, rid: str) -> str:
    """Panel title: run id, size, steps and seen samples, and whether it is unfinished."""
    if d.empty:
        return rid
    row = d.iloc[0]
    state = " (unfinished)" if bool(d["partial"].any()) else ""
    budget = human(row["total_steps"] * row["global_batch"])
    return f"{rid}\n{row['size']}, {int(row['total_steps'])} steps, S = {budget}{state}"
