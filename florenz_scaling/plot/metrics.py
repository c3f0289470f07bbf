"""Figures of what the model says (metrics.csv): the paper's Fig. 6 analogue and metric vs compute.

- ``metric_vs_size``     a metric vs model size per group at the largest seen-samples budget measured for two
                         sizes or more, a line per decoding: with the decoder prefix (dashed) and without
                         (solid), greedy and beam search in their own colours (paper Fig. 6).
- ``metric_vs_compute``  a metric vs training compute per group, every run's final point (colour: size), with
                         both fitted forms of ``fit.metrics``: the direct power law on −ln Q and the two-stage
                         map (loss from the compute law, then a sigmoid), and their rollout errors.

A row per metric among ``PRIMARY`` that the sweep measured. ``metric_figures`` gives both for a sweep
directory (``plot.sweep`` adds them only when it has a metrics.csv).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from florenz_scaling.files import SweepDir
from florenz_scaling.fit import load_metric_fits
from florenz_scaling.fit.metrics import COMPUTE_AXIS, metric_points
from florenz_scaling.plot.style import (
    COMPUTE_LABEL,
    FIT_COLOR,
    PARAMS_LABEL,
    count_axis,
    empty_panel,
    group_title,
    human,
    legend_outside,
    log_grid,
    new_figure,
    size_palette,
)
from florenz_scaling.results import group_order, read_table

# The metrics drawn, in this order: the paper's captioning metric, the translation one, and the synthetic
# world's exact reading of the scene (the others stay in metrics.csv and fits/metric-*.json).
PRIMARY = ("cider", "bleu", "attr_acc")
LABELS = {
    "cider": "CIDEr",
    "bleu": "BLEU",
    "chrf": "chrF",
    "attr_acc": "attribute accuracy",
    "exact_match": "exact match",
}
# The decoding each group's compute figure shows: the paper's protocol first (beam 4, seeded with the prefix).
PREFERRED = ("beam4+prefix", "greedy+prefix", "beam4", "greedy")
TWO_STAGE_COLOR = "#1f77b4"


def _label(metric: str) -> str:
    return LABELS.get(metric, metric)


def _metrics_present(points: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    have = set(points["metric"])
    wanted = list(metrics) if metrics else [m for m in PRIMARY if m in have]
    return [m for m in wanted if m in have] or sorted(have)[:1]


def _decoding_style(decoding: str, beams: list[str]) -> dict[str, Any]:
    """Solid without the prefix, dashed with it; a colour per search (greedy, beam4, ...)."""
    from matplotlib import colormaps

    search = decoding.split("+")[0]
    color = colormaps["tab10"](beams.index(search) % 10) if search in beams else "0.4"
    return {"color": color, "ls": "--" if decoding.endswith("+prefix") else "-", "marker": "o", "ms": 4}


def _grid(n_rows: int, n_cols: int) -> tuple[Figure, np.ndarray]:
    fig = new_figure(3.6 * n_cols + 0.6, 2.8 * n_rows + 0.9)
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
    return fig, axes


def metric_vs_size(points: pd.DataFrame, metrics: Sequence[str] | None = None) -> Figure:
    """Fig. 6 analogue: ``metric_points`` rows → a panel per (metric, group), value vs parameters at the
    largest budget measured for two sizes or more, a line per decoding (prefix dashed)."""
    mets = _metrics_present(points, metrics) if len(points) else []
    groups = group_order(points["group"]) if len(points) else []
    fig, axes = _grid(max(len(mets), 1), max(len(groups), 1))
    if not mets or not groups:
        empty_panel(axes[0, 0], "no generation metrics")
        return fig
    decodings = sorted(set(points["decoding"]), key=lambda d: (d.split("+")[0], d.endswith("+prefix")))
    beams = sorted({d.split("+")[0] for d in decodings}, key=lambda b: (b != "greedy", b))
    handles, labels = [], []
    for i, metric in enumerate(mets):
        for j, group in enumerate(groups):
            ax = axes[i, j]
            d = points[(points["metric"] == metric) & (points["group"] == group)]
            budgets = [b for b, e in d.groupby("D") if e["N"].nunique() >= 2]
            if not budgets:
                empty_panel(ax, f"{_label(metric)}: fewer than two sizes at any budget")
                continue
            d = d[d["D"] == max(budgets)]
            for decoding in decodings:
                e = d[d["decoding"] == decoding].groupby("N", as_index=False)["value"].mean()
                if len(e):
                    (h,) = ax.plot(e["N"], e["value"], label=decoding, **_decoding_style(decoding, beams))
                    handles.append(h)
                    labels.append(decoding)
            count_axis(ax, "x")
            ax.set_title(f"{group_title(group)}\nS = {human(max(budgets))} seen samples", fontsize="small")
            ax.set_xlabel(PARAMS_LABEL, fontsize="small")
            ax.set_ylabel(_label(metric), fontsize="small")
            ax.grid(alpha=0.3)
    legend_outside(fig, handles, labels)
    return fig


def _shown_decoding(available: set[str]) -> str:
    return next((d for d in PREFERRED if d in available), sorted(available)[0])


def _fit_note(fit: Any) -> str:
    """Exponent of the direct form and both rollout errors (metric units), for the panel's corner."""
    parts = []
    if fit.direct:
        a, ci = fit.direct["params"]["alpha"], fit.direct["ci"].get("alpha")
        band = f" [{ci[0]:.2g}, {ci[1]:.2g}]" if ci and None not in ci else ""
        parts.append(f"direct α = {a:.3g}{band}")
    r = fit.rollout or {}
    errs = [
        f"{name} {r[k]['mean_abs_error']:.3g}"
        for k, name in (("direct", "direct"), ("two_stage", "two-stage"))
        if r.get(k)
    ]
    if errs:
        parts.append("rollout |err|: " + ", ".join(errs))
    return "\n".join(parts)


def metric_vs_compute(points: pd.DataFrame, fits: list[Any], metrics: Sequence[str] | None = None) -> Figure:
    """A panel per (metric, group): every run's final value vs compute (colour: size), the direct form (red,
    solid, on the metric's frontier: filled markers) and the two-stage form (blue, dashed), for the group's
    ``PREFERRED`` decoding."""
    mets = _metrics_present(points, metrics) if len(points) else []
    groups = group_order(points["group"]) if len(points) else []
    fig, axes = _grid(max(len(mets), 1), max(len(groups), 1))
    if not mets or not groups:
        empty_panel(axes[0, 0], "no generation metrics")
        return fig
    sizes = sorted(set(points["N"]))
    colors = size_palette([str(s) for s in sizes])
    handles = [Line2D([], [], ls="", marker="o", color=colors[str(s)], mec="k", mew=0.4) for s in sizes]
    labels = [f"P = {human(s)}" for s in sizes]
    handles += [Line2D([], [], color=FIT_COLOR), Line2D([], [], color=TWO_STAGE_COLOR, ls="--")]
    labels += ["direct: −ln Q = A·C^(−α)", "two-stage: loss law → sigmoid"]
    for i, metric in enumerate(mets):
        for j, group in enumerate(groups):
            ax = axes[i, j]
            d = points[(points["metric"] == metric) & (points["group"] == group)]
            if not len(d):
                empty_panel(ax, f"no {_label(metric)} for {group}")
                continue
            decoding = _shown_decoding(set(d["decoding"]))
            d = d[d["decoding"] == decoding]
            for N, e in d.groupby("N"):
                ax.scatter(e["C"], e["value"], color=colors[str(N)], s=30, edgecolor="k", lw=0.4, zorder=3)
            fit = next(
                (
                    f
                    for f in fits
                    if (f.metric, f.group, f.decoding, f.axis) == (metric, group, decoding, COMPUTE_AXIS)
                ),
                None,
            )
            x = log_grid(d["C"].min() / 1.5, d["C"].max() * 3)
            if fit is not None and fit.direct:
                ax.plot(x, fit.predict_direct(x), color=FIT_COLOR, lw=1.5, zorder=2)
            if fit is not None and fit.two_stage:
                ax.plot(x, fit.predict_two_stage(x), color=TWO_STAGE_COLOR, lw=1.5, ls="--", zorder=2)
            if fit is not None and (text := _fit_note(fit)):
                # Upper left: the metric rises with compute, so the lower left holds the small runs' points.
                ax.text(
                    0.02,
                    0.98,
                    text,
                    transform=ax.transAxes,
                    fontsize="x-small",
                    va="top",
                    ha="left",
                    color="0.25",
                    zorder=6,
                    bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "0.8", "alpha": 0.85},
                )
            ax.set_xscale("log")
            ax.set_title(f"{group_title(group)} · {decoding}", fontsize="small")
            ax.set_xlabel(COMPUTE_LABEL, fontsize="small")
            ax.set_ylabel(_label(metric), fontsize="small")
            ax.grid(alpha=0.3)
    legend_outside(fig, handles, labels)
    return fig


def load_metric_points(sweep_dir: str | Path) -> pd.DataFrame | None:
    """``fit.metrics.metric_points`` of DIR/metrics.csv (no losses: the figures draw metrics only)."""
    sd = SweepDir(sweep_dir)
    if not sd.metrics_csv.is_file():
        return None
    return metric_points(read_table(sd.metrics_csv))


def metric_figures(sweep_dir: str | Path) -> list[tuple[str, str, str, Figure]]:
    """(name, title, caption, figure) of both metric figures; [] without metrics.csv or any group metric."""
    points = load_metric_points(sweep_dir)
    if points is None or not len(points):
        return []
    fits = load_metric_fits(sweep_dir)
    return [
        (
            "metric_vs_size",
            "What the model says vs model size (paper Fig. 6)",
            "Generation metrics of each group at the largest seen-samples budget measured for two sizes or "
            "more, vs parameters; solid: decoded without the target-language prefix, dashed: seeded with it.",
            metric_vs_size(points),
        ),
        (
            "metric_vs_compute",
            "What the model says vs training compute",
            "Each run's final value (colour: size) for the group's decoding shown in the title, with the "
            "direct power law on −ln Q (red) and the two-stage map held-out loss → sigmoid (blue, dashed); "
            "the corner gives the direct exponent and both rollout errors (fit without the largest size, "
            "predict it).",
            metric_vs_compute(points, fits),
        ),
    ]


__all__ = ["PRIMARY", "load_metric_points", "metric_figures", "metric_vs_compute", "metric_vs_size"]
