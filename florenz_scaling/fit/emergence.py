"""Emergence with its uncertainty: the paper's questions about unseen captioning, each with an interval.

- **Does it rise with size?** At the largest seen-samples budget measured for two sizes or more, the group's
  value per size (n-weighted mean over its pairs) and the slope of value against log10 P. Each size's value
  carries the bootstrap interval over its held-out samples (metrics.csv ``lower``/``upper``,
  ``train.intervals``); the slope's interval comes from drawing every size's value from its own bootstrap
  spread (normal with the interval's standard error; sizes are independent sample sets) and refitting.
  Answer: "yes" when the interval lies above 0, "no" when below, "cannot tell" when it holds 0 — then
  ``samples_needed`` says how many held-out samples per pair would make an interval of the same centre
  exclude 0 (an interval narrows as 1/sqrt(n)).
- **What does the prefix do?** With vs without the decoder prefix at the largest size and budget: the
  difference and its interval (the two decodings' standard errors combined as independent — conservative,
  since they score the same samples).
- **Does it use the image?** The image-shuffle gap (conditioning.csv) at the largest run, sample-weighted
  over the group's pairs. Its interval comes from the per-sample spread of the held-out and the shuffled
  losses (``loss_sd``, ``image_shuffled_loss_sd``), combined as independent: conservative, since both score
  the same samples, whose difficulty they share. Runs from before the spread was recorded get a t-interval
  over the group's pair gaps instead, and say so.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Z95 = 1.959963984540054
RESAMPLES = 2000


def _se(lower: Any, upper: Any) -> Any:
    """A bootstrap interval's standard error (a 95% interval is ±1.96 se)."""
    return (np.asarray(upper, float) - np.asarray(lower, float)) / (2 * Z95)


def _final(metrics: Any) -> Any:
    import pandas as pd

    m = metrics.copy()
    m["decoding"] = m["decoding"].fillna("").astype(str) if "decoding" in m.columns else ""
    m["group"] = m["group"].fillna("").astype(str)
    for c in ("lower", "upper"):  # empty for records written before intervals (read back as text)
        m[c] = pd.to_numeric(m[c], errors="coerce") if c in m.columns else np.nan
    m["n"] = m["n"].astype(float) if "n" in m.columns else 1.0
    return m[m["step"] == m.groupby("run_id")["step"].transform("max")]


def size_points(d: Any, group: str) -> Any:
    """Per size (params): the group's n-weighted value over its pairs, its standard error, interval and n
    per pair (``d``: final rows of one metric and decoding at one budget)."""
    import pandas as pd

    g = d[d["group"] == group].copy()
    g["se"] = _se(g["lower"], g["upper"])
    rows = []
    for p, x in g.groupby("params", sort=True):
        w = x["n"].to_numpy(float)
        w = w / w.sum() if w.sum() > 0 else np.full(len(x), 1 / len(x))
        value = float((w * x["value"].astype(float)).sum())
        se = float(np.sqrt((w**2 * x["se"].to_numpy(float) ** 2).sum()))
        rows.append(
            {"params": float(p), "value": value, "se": se, "lower": value - Z95 * se,
             "upper": value + Z95 * se, "n": float(x["n"].min())}
        )  # fmt: skip
    return pd.DataFrame(rows)


def trend(points: Any, *, resamples: int = RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """The slope of value against log10 P with its bootstrap interval, the answer and what it would take."""
    x = np.log10(points["params"].to_numpy(float))
    y, se = points["value"].to_numpy(float), points["se"].to_numpy(float)
    xc = x - x.mean()
    slope = float((xc * (y - y.mean())).sum() / (xc**2).sum())
    out: dict[str, Any] = {"slope": slope, "ci": None, "answer": "cannot tell", "samples_needed": None}
    out["test"] = "slope of the value against log10 P, intervals by bootstrap over held-out samples per size"
    if not np.isfinite(se).all():
        out["why"] = "no intervals recorded (metrics written before intervals were)"
        return out
    draws = np.random.default_rng(seed).normal(y, se, size=(resamples, len(y)))
    slopes = ((draws - draws.mean(axis=1, keepdims=True)) * xc).sum(axis=1) / (xc**2).sum()
    lo, hi = (float(v) for v in np.quantile(slopes, [0.025, 0.975]))
    out["ci"] = [lo, hi]
    if lo > 0:
        out["answer"] = "yes"
    elif hi < 0:
        out["answer"] = "no"
    else:
        half, n = (hi - lo) / 2, float(points["n"].min())
        out["samples_needed"] = math.ceil(n * (half / abs(slope)) ** 2) if slope else None
    return out


def emergence(metrics: Any, group: str = "UC", reference: str = "SC") -> list[dict[str, Any]]:
    """Per metric and decoding: ``group``'s value per size (with intervals) at the largest budget measured for
    two sizes or more, its trend in log P (``trend``), and ``reference`` at the largest size for scale."""
    if metrics is None or not len(metrics) or group not in set(metrics["group"].astype(str)):
        return []
    m, out = _final(metrics), []
    for (metric, decoding), d in m.groupby(["metric", "decoding"], sort=True):
        per_budget = d[d["group"] == group].groupby("seen_samples")["params"].nunique()
        budgets = per_budget[per_budget >= 2].index
        if not len(budgets):
            continue
        d = d[d["seen_samples"] == budgets.max()]
        pts, ref = size_points(d, group), size_points(d, reference)
        t = trend(pts)
        first, last = float(pts["value"].iloc[0]), float(pts["value"].iloc[-1])
        out.append(
            {
                "metric": str(metric),
                "decoding": str(decoding),
                "seen_samples": float(budgets.max()),
                "sizes": pts["params"].tolist(),
                "values": pts["value"].tolist(),
                "lower": pts["lower"].tolist(),
                "upper": pts["upper"].tolist(),
                "n": pts["n"].tolist(),
                **t,
                "emerges": t["answer"] == "yes",
                "rise": (last - first) / max(abs(first), 1e-12) if first else float(last > 0),
                "reference": reference if len(ref) else None,
                "reference_at_largest": float(ref["value"].iloc[-1]) if len(ref) else None,
            }
        )
    return out


def prefix_effect(metrics: Any, metric: str = "cider", group: str = "UC") -> dict[str, Any] | None:
    """``group``'s ``metric`` with minus without the decoder prefix (same beam) at the largest size's largest
    budget, with the interval of the difference."""
    if metrics is None or not len(metrics):
        return None
    m = _final(metrics)
    m = m[(m["metric"] == metric) & (m["group"] == group)]
    with_p = sorted({d for d in m["decoding"] if d.endswith("+prefix")}, key=lambda d: ("beam" not in d, d))
    for d in with_p:
        base = d.removesuffix("+prefix")
        both = m[m["decoding"].isin((d, base))]
        if set(both["decoding"]) != {d, base}:
            continue
        top = both[both["params"] == both["params"].max()]
        top = top[top["seen_samples"] == top["seen_samples"].max()]
        a, b = size_points(top[top["decoding"] == d], group), size_points(top[top["decoding"] == base], group)
        diff, se = (
            float(a["value"].iloc[0] - b["value"].iloc[0]),
            math.hypot(a["se"].iloc[0], b["se"].iloc[0]),
        )
        ci = [diff - Z95 * se, diff + Z95 * se] if math.isfinite(se) else None
        return {
            "metric": metric, "group": group, "with": d, "without": base,
            "params": float(a["params"].iloc[0]),
            "value_with": float(a["value"].iloc[0]), "value_without": float(b["value"].iloc[0]),
            "difference": diff, "ci": ci,
        }  # fmt: skip
    return None


def image_gap(cond: Any, group: str = "UC") -> dict[str, Any] | None:
    """The image-shuffle gap (nats per token) of ``group`` at its largest run (most params, then steps),
    sample-weighted over its pairs, with its interval (see the module doc)."""
    if cond is None or not len(cond) or "image_shuffled_loss" not in cond.columns:
        return None
    c = cond[cond["group"].fillna("").astype(str) == group]
    if "partial" in c.columns:
        c = c[~c["partial"].astype(str).str.lower().isin(("true", "1"))]
    if not len(c):
        return None
    top = c.sort_values(["params", "total_steps"], kind="stable")
    top = top[top["run_id"] == top["run_id"].iloc[-1]]
    top = top[top["step"] == top["step"].max()]
    gaps = top["image_shuffled_loss"].astype(float).to_numpy() - top["loss"].astype(float).to_numpy()
    w = top["samples"].astype(float).to_numpy()
    gap, k = float((gaps * w).sum() / w.sum()), len(gaps)
    sd_columns = ("loss_sd", "image_shuffled_loss_sd")
    if all(col in top.columns for col in sd_columns) and top[list(sd_columns)].notna().all().all():
        sd = top[list(sd_columns)].astype(float).to_numpy()
        se = math.sqrt(float((w**2 * (sd**2).sum(axis=1) / w).sum())) / float(w.sum())  # var of mean: sd²/n
        ci: list[float] | None = [gap - Z95 * se, gap + Z95 * se]
        source = (
            f"per-sample spread of the held-out and image-shuffled losses over {int(w.sum())} samples in "
            f"{k} pair(s), combined as independent (conservative)"
        )
    else:
        ci, source = (
            _pair_spread(gaps, gap),
            f"spread over the group's {k} pair(s) at that run (no per-sample spread recorded)",
        )
    answer = "cannot tell" if ci is None or ci[0] <= 0 <= ci[1] else ("yes" if ci[0] > 0 else "no")
    return {
        "group": group, "run": str(top["run_id"].iloc[0]), "size": str(top["size"].iloc[0]), "gap": gap,
        "ci": ci, "pairs": k, "answer": answer, "interval_from": source,
    }  # fmt: skip


def _pair_spread(gaps: Any, gap: float) -> list[float] | None:
    """A t-interval over the pairs' gaps (what runs without per-sample spreads have), or None for one pair."""
    from scipy import stats

    k = len(gaps)
    if k < 2:
        return None
    half = float(stats.t.ppf(0.975, k - 1) * gaps.std(ddof=1) / math.sqrt(k))
    return [gap - half, gap + half]


__all__ = ["emergence", "image_gap", "prefix_effect", "size_points", "trend"]
