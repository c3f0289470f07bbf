"""Shared look of the sweep figures: palettes, markers, axis scales, number formats, legends, bands.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas, never pyplot: no global figure
registry to leak memory across many plots, no GUI backend, safe in worker threads and under pytest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

GROUP_NAMES = {"UC": "unseen captioning", "ST": "seen translation", "SC": "seen captioning"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")

# Axis labels with units, used by every figure so they read the same everywhere.
COMPUTE_LABEL = "Training compute C [GMACs]"
LOSS_LABEL = "Held-out loss [nats/token]"
TRAIN_LOSS_LABEL = "Loss [nats/token]"
PARAMS_LABEL = "Parameters P [count]"
SAMPLES_LABEL = "Seen samples S [samples]"
STEP_LABEL = "Training step [optimizer steps]"

FIT_COLOR = "#c0392b"
PAPER_COLOR = "#555555"
FRONTIER_COLOR = "#7f7f7f"


def new_figure(width: float, height: float) -> Figure:
    """A Figure on the Agg canvas (no pyplot state) with constrained layout, so outside legends fit."""
    fig = Figure(figsize=(width, height), layout="constrained", dpi=110)
    FigureCanvasAgg(fig)
    return fig


def group_title(group: str) -> str:
    """Panel title of a group, e.g. "UC — unseen captioning"."""
    name = GROUP_NAMES.get(group)
    return f"{group} — {name}" if name else group


def human(n: float, digits: int = 3) -> str:
    """Compact count: 1.2k, 35M, 11.2B (parameters and samples span many orders of magnitude)."""
    if n is None or not math.isfinite(n):
        return "n/a"
    a = abs(n)
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= scale:
            return f"{n / scale:.{digits}g}{suffix}"
    return f"{n:.{digits}g}"


class CountFormatter(LogFormatter):
    """Log-axis tick labels for counts (parameters, samples) as 3k, 10M, 1B instead of 3×10³.

    LogFormatter decides which ticks get a label (all minor ticks on a short axis, only decades on a long
    one); only the text changes.
    """

    def __init__(self) -> None:
        super().__init__(labelOnlyBase=False, minor_thresholds=(1.2, 0.5))

    def __call__(self, x: float, pos: int | None = None) -> str:
        return human(x, 3) if super().__call__(x, pos) else ""


def count_axis(ax: Axes, axis: str = "x") -> None:
    """Log scale for a count axis with CountFormatter labels on major and minor ticks."""
    getattr(ax, f"set_{axis}scale")("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(CountFormatter())
    target.set_minor_formatter(CountFormatter())


def loss_log_axis(ax: Axes, axis: str = "y") -> None:
    """Log scale for a loss axis, labelled with plain numbers (4, 5, 6) rather than 4×10⁰.

    Losses rarely span a decade, so the minor ticks carry the labels; plain text also skips mathtext, which
    dominates the drawing time of log axes.
    """
    getattr(ax, f"set_{axis}scale")("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    target.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def size_palette(sizes: Sequence[str]) -> dict[str, Any]:
    """A colour per size, ordered small → large along viridis (perceptually ordered, colour-blind safe)."""
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    n = len(sizes)
    # Stop before viridis' pale yellow end, which is unreadable on white.
    return {s: cmap(0.05 + 0.8 * i / max(n - 1, 1)) for i, s in enumerate(sizes)}


def pair_palette(pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """A distinct colour per (task, language) pair, stable across panels."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(pairs) <= 10 else "tab20"]
    return {p: cmap(i % cmap.N) for i, p in enumerate(pairs)}


def marker_map(values: Iterable[float]) -> dict[float, str]:
    """A marker shape per distinct value (seen-sample budgets), in increasing order."""
    vals = sorted({float(v) for v in values})
    return {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(vals)}


def spans_decades(values: Iterable[float], decades: float = 1.0) -> bool:
    """True when positive data cover at least ``decades`` orders of magnitude (a log axis reads better)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size < 2 or (v <= 0).any():
        return False
    return bool(np.log10(v.max() / v.min()) >= decades)


def set_scale(ax: Axes, axis: str, values: Iterable[float], count: bool = False) -> None:
    """Log scale on ``axis`` ("x"/"y") when the values span a decade; count axes get 1M/1B tick labels."""
    if not spans_decades(values):
        return
    if count:
        count_axis(ax, axis)
    else:
        getattr(ax, f"set_{axis}scale")("log")


def log_grid(lo: float, hi: float, n: int = 200) -> np.ndarray:
    """``n`` log-spaced points between two positive numbers."""
    return np.logspace(np.log10(lo), np.log10(hi), n)


def draw_bands(ax: Axes, fit: Any, x: np.ndarray, color: str = FIT_COLOR, **inputs: Any) -> bool:
    """Shade the fit's 95% confidence (darker) and prediction (lighter) bands; False when it has none.

    ``inputs`` are the law's keyword inputs over ``x`` (e.g. ``C=x`` or ``P=x, S=s``).
    """
    drawn = False
    for kind, alpha in (("prediction", 0.12), ("confidence", 0.28)):
        try:
            _, lo, hi = fit.predict(interval=kind, **inputs)
        except (ValueError, KeyError):
            # Laws fitted by bootstrap (or with no residual degrees of freedom) have no analytic band.
            continue
        ax.fill_between(x, lo, hi, color=color, alpha=alpha, lw=0, label=f"95% {kind} band")
        drawn = True
    return drawn


def legend_outside(fig: Figure, handles: list[Any], labels: list[str], ncol: int | None = None) -> None:
    """One figure-level legend under the panels, so it never covers data."""
    if not handles:
        return
    seen: dict[str, Any] = {}
    for h, lab in zip(handles, labels, strict=True):
        if lab and not lab.startswith("_") and lab not in seen:
            seen[lab] = h
    ncol = ncol or min(len(seen), 6)
    fig.legend(
        list(seen.values()),
        list(seen),
        loc="outside lower center",
        ncol=max(ncol, 1),
        fontsize="small",
        frameon=False,
    )


def note(ax: Axes, text: str) -> None:
    """A short remark in the panel's lower-left corner (fit coefficients, an off-scale reference line)."""
    ax.text(
        0.02,
        0.02,
        text,
        transform=ax.transAxes,
        fontsize="x-small",
        va="bottom",
        ha="left",
        color="0.25",
        bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "0.8", "alpha": 0.85},
        zorder=6,
    )


def empty_panel(ax: Axes, message: str) -> None:
    """Mark a panel that has nothing to show, instead of leaving a confusing blank."""
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
