"""How what the model says scales: generation metrics (metrics.csv) against compute and model size, per group.

Two forms, fitted side by side on the same points, each checked by rollout (fit without the largest size,
predict it) where there are at least three sizes:

- **direct**: −ln Q = A·X^(−α), i.e. OLS of log10(−ln Q) on log10 X, with Q the metric as a share of its
  maximum (accuracies as they are, BLEU and chrF / 100, CIDEr / 1000). This is Apple's form (Krajewski et
  al., arXiv 2512.08894: "a simple power law on log accuracy"), chosen over a power law on the metric itself
  or on 1 − Q because Q = exp(−A·X^(−α)) is bounded in (0, 1] and S-shaped in log X: it can sit near 0 for
  small models and then rise, which is what emergence looks like, while a plain power law cannot saturate.
  −ln Q needs Q in (0, 1): a group value of 0 (or the maximum) is clipped to half a sample, 0.5/n, as a
  continuity correction, and the fit says how many points were.
- **two-stage** (the OLMo ladder's and Marin's): held-out loss from the group's compute law (Eq. 1,
  ``fit.laws.fit_compute``), then loss → Q through a fitted sigmoid Q = lo + span / (1 + exp(k·(L − L0))),
  fitted on every final run of the group (the mapping is meant to hold whatever the model size or budget).

``axis="compute"`` fits the direct form to the metric's frontier (the best value so far as compute grows, as
Eq. 1 uses the loss frontier); ``axis="size"`` to one point per size at the largest seen-samples budget
measured for two sizes or more (the paper's Fig. 6 is at one budget). ``MetricFit`` round-trips through JSON;
``fit.io.fit_sweep`` writes them to fits/metric-<metric>-<group>.json and ``fit.io.load_metric_fits`` reads.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from florenz_scaling.fit.laws import fit_compute, pareto_frontier
from florenz_scaling.fit.metric_forms import (  # noqa: F401 - the forms are part of this module's surface
    MIN_SIGMOID_POINTS,
    _clip,
    direct_q,
    fit_direct,
    fit_sigmoid,
    sigmoid_q,
)
from florenz_scaling.fit.result import jsonable

# The metric's maximum in its own units (train.score): Q = value / scale lies in [0, 1].
METRIC_SCALE = {"bleu": 100.0, "chrf": 100.0, "cider": 1000.0}
AXES = ("compute", "size")
COMPUTE_AXIS = AXES[0]  # an axis of a metric fit, not a law
FILE_PREFIX = "metric-"
ROLLOUT_MIN_SIZES = 3  # the training part keeps at least two sizes


def metric_scale(metric: str, values: Any = ()) -> float:
    """The metric's maximum: 100 for BLEU/chrF, 1000 for CIDEr (scorer max 10 × 100), 1 for shares.

    An unknown metric is taken as a share when every value is in [0, 1], else refused (a wrong scale
    would silently bend the fit)."""
    if metric in METRIC_SCALE:
        return METRIC_SCALE[metric]
    v = np.asarray(values, dtype=float)
    if metric == "exact_match" or metric.startswith("attr_") or (v.size and np.nanmax(v) <= 1.0):
        return 1.0
    raise ValueError(f"metric {metric!r}: unknown scale (values above 1); add it to METRIC_SCALE")


def _truthy(s: Any) -> Any:
    """A boolean column as pandas writes it (bool) or reads it back from CSV (True/False/1/0 text)."""
    return s if s.dtype == bool else s.astype(str).str.strip().str.lower().isin(("true", "1", "yes"))


def metric_points(metrics: Any, losses: Any = None) -> Any:
    """Per (run, group, metric, decoding) at each run's final, complete evaluation: the group value
    (n-weighted mean over the group's pairs), n, the run's N, D, C, and its group held-out loss.

    ``losses`` are the group points of results.csv (``fit.io.sweep_points(table, level="group")``: run_id,
    group, loss); loss is NaN for a run they lack, and for all without them (no two-stage form then). A run
    lacking a pair of the group for that metric and decoding gets no point (a mean over some pairs would be
    another group's). Files without ``final`` / ``partial`` columns count each run's last step as final."""
    import pandas as pd

    m = pd.DataFrame(metrics)
    m = m[m["group"].fillna("").astype(str) != ""]
    if "final" in m.columns:
        m = m[_truthy(m["final"])]
    else:
        m = m[m["step"] == m.groupby("run_id")["step"].transform("max")]
    if "partial" in m.columns:
        m = m[~_truthy(m["partial"])]
    m = m.assign(decoding=m["decoding"].fillna("").astype(str), _w=m["value"].astype(float) * m["n"])
    members = {
        k: set(zip(d["task"], d["lang"], strict=True)) for k, d in m.groupby(["group", "metric", "decoding"])
    }
    rows = []
    for (run, group, metric, decoding), d in m.groupby(["run_id", "group", "metric", "decoding"]):
        if set(zip(d["task"], d["lang"], strict=True)) != members[(group, metric, decoding)]:
            continue
        r = d.iloc[0]
        rows.append(
            {
                "run_id": str(run),
                "group": str(group),
                "metric": str(metric),
                "decoding": decoding,
                "value": float(d["_w"].sum() / d["n"].sum()),
                "n": int(d["n"].sum()),
                "N": float(r["params"]),
                "D": float(r["seen_samples"]),
                "C": float(r["compute_gmacs"]),
            }
        )
    out = pd.DataFrame(rows, columns=["run_id", "group", "metric", "decoding", "value", "n", "N", "D", "C"])
    loss = {}
    if losses is not None and len(losses):
        loss = {
            (str(r), str(g)): float(v)
            for r, g, v in zip(losses["run_id"], losses["group"], losses["loss"], strict=True)
        }
    out["loss"] = [loss.get((r, g), float("nan")) for r, g in zip(out["run_id"], out["group"], strict=True)]
    return out


@dataclass(frozen=True)
class MetricFit:
    """One metric of one group and decoding against compute or size: both forms, their rollouts, the points.

    ``direct`` is ``fit_direct``'s result (on ``x`` = C or N); ``two_stage`` holds ``loss_law`` (alpha0,
    alpha1 of Eq. 1) and ``sigmoid`` (``fit_sigmoid``), or None with the reason in ``warnings``. ``rollout``
    maps each form to {n_train, n_test, points, mean_abs_error, signed_bias} in the metric's units, with
    ``held_out`` naming what was held out; None with fewer than three sizes. ``points`` are every point of
    the axis, ``used`` marking those the direct form was fitted to. ``budget`` is the seen samples of the
    size axis; ``c_of_n`` a log-log line C(N) at that budget, to draw the two-stage curve against N."""

    metric: str
    decoding: str
    group: str
    axis: str
    scale: float
    points: list[dict[str, Any]]
    direct: dict[str, Any] | None = None
    two_stage: dict[str, Any] | None = None
    rollout: dict[str, Any] | None = None
    budget: float | None = None
    c_of_n: list[float] | None = None
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.axis not in AXES:
            raise ValueError(f"axis must be one of {', '.join(AXES)}; got {self.axis!r}")
        for name in ("points", "direct", "two_stage", "rollout", "budget", "c_of_n", "warnings"):
            object.__setattr__(self, name, jsonable(getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MetricFit:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_json(cls, text: str) -> MetricFit:
        return cls.from_dict(json.loads(text))

    def predict_direct(self, x: Any) -> np.ndarray:
        """The direct form's metric (in its own units) at x (C or N, by ``axis``)."""
        if self.direct is None:
            raise ValueError("no direct fit")
        return self.scale * direct_q(self.direct["params"], x)

    def predict_loss(self, C: Any) -> np.ndarray:
        """The group's held-out loss at compute C from the compute law of the two-stage form."""
        if self.two_stage is None:
            raise ValueError("no two-stage fit")
        p = self.two_stage["loss_law"]
        return 10.0 ** (p["alpha0"] + p["alpha1"] * np.log10(np.asarray(C, dtype=float)))

    def predict_two_stage(self, C: Any) -> np.ndarray:
        """The two-stage metric at compute C: loss from the compute law, then the sigmoid."""
        return self.scale * sigmoid_q(self.two_stage["sigmoid"]["params"], self.predict_loss(C))

    def compute_at(self, N: Any) -> np.ndarray:
        """Compute C at model size N on the size axis's budget (the log-log line through its points)."""
        if not self.c_of_n:
            raise ValueError("no C(N) line: not a size-axis fit")
        return 10.0 ** (self.c_of_n[0] + self.c_of_n[1] * np.log10(np.asarray(N, dtype=float)))


# ---- fitting one metric --------------------------------------------------------------------------------


def _axis_points(pts: Any, axis: str) -> tuple[Any, float | None]:
    """The points the direct form describes: the metric frontier (compute) or the largest shared budget."""
    if axis == COMPUTE_AXIS:
        return pts, None
    per_budget = pts.groupby("D")["N"].nunique()
    budgets = per_budget[per_budget >= 2].index
    if not len(budgets):
        raise ValueError("no seen-samples budget measured for two sizes")
    budget = float(budgets.max())
    sub = pts[pts["D"] == budget]
    return sub.groupby("N", as_index=False).agg(
        {"value": "mean", "n": "sum", "C": "mean", "D": "first", "loss": "mean", "run_id": "first"}
    ), budget


def _forms(train: Any, axis: str, scale: float, sig_points: Any) -> tuple[dict | None, dict | None, list]:
    """Both forms fitted on ``train`` (the axis's points) and ``sig_points`` (all runs, for the two-stage)."""
    notes: list[str] = []
    x = train["C" if axis == COMPUTE_AXIS else "N"].to_numpy(float)
    q, n_clipped = _clip(train["value"].to_numpy(float), train["n"].to_numpy(float), scale)
    used = pareto_frontier(x, -np.log(q)) if axis == COMPUTE_AXIS else np.ones(len(x), dtype=bool)
    direct = None
    try:
        direct = {**fit_direct(x[used], q[used]), "used": used.tolist()}
        if n_clipped:
            notes.append(f"{n_clipped} point(s) at 0 or the maximum clipped to half a sample (0.5/n)")
    except ValueError as e:
        notes.append(f"direct form not fitted: {e}")
    two = None
    s = sig_points[np.isfinite(sig_points["loss"].to_numpy(float))]
    try:
        law = fit_compute(s["C"].to_numpy(float), s["loss"].to_numpy(float))
        # The sigmoid takes Q as measured: no logarithm here, so nothing to clip (a clipped 0 would lift lo).
        two = {
            "loss_law": {"alpha0": law.params["alpha0"], "alpha1": law.params["alpha1"]},
            "sigmoid": fit_sigmoid(s["loss"].to_numpy(float), s["value"].to_numpy(float) / scale),
        }
    except (ValueError, np.linalg.LinAlgError) as e:
        notes.append(f"two-stage form not fitted: {e}")
    return direct, two, notes


def _errors(fit: MetricFit, test: Any, train_sizes: int) -> dict[str, Any]:
    """Rollout errors of ``fit`` (fitted without the largest size) on the held-out points, metric units."""
    out: dict[str, Any] = {
        "held_out": f"largest size: N = {test['N'].max():.6g}",
        "n_test": len(test),
        "n_train_sizes": train_sizes,
    }
    x = test["C" if fit.axis == COMPUTE_AXIS else "N"].to_numpy(float)
    obs, C = test["value"].to_numpy(float), test["C"].to_numpy(float)
    preds = {
        "direct": (lambda: fit.predict_direct(x)) if fit.direct else None,
        "two_stage": (lambda: fit.predict_two_stage(C)) if fit.two_stage else None,
    }
    for form, pred in preds.items():
        if pred is None:
            out[form] = None
            continue
        p = np.asarray(pred(), dtype=float)
        out[form] = {
            "points": [
                {"N": float(a), "C": float(c), "observed": float(o), "predicted": float(b)}
                for a, c, o, b in zip(test["N"], C, obs, p, strict=True)
            ],
            "mean_abs_error": float(np.mean(np.abs(p - obs))),
            "signed_bias": float(np.mean(p - obs)),
        }
    errs = {k: out[k]["mean_abs_error"] for k in preds if out[k]}
    out["better"] = min(errs, key=errs.get) if len(errs) == 2 else None
    return out


def fit_metric(
    pts: Any, axis: str, *, metric: str, decoding: str, group: str, rollout: bool = True
) -> MetricFit:
    """Both forms for one (metric, decoding, group) on ``metric_points`` rows of that key, and their rollout
    (fit without the largest size, predict its points) where there are ``ROLLOUT_MIN_SIZES`` sizes."""
    scale = metric_scale(metric, pts["value"])
    points, budget = _axis_points(pts, axis)
    direct, two, notes = _forms(points, axis, scale, pts)
    c_of_n = None
    if axis == "size" and points["N"].nunique() >= 2:
        b = np.polyfit(np.log10(points["N"].to_numpy(float)), np.log10(points["C"].to_numpy(float)), 1)
        c_of_n = [float(b[1]), float(b[0])]
    used = (direct or {}).get("used") or [False] * len(points)
    rows = [
        {
            "run_id": str(r.run_id),
            "N": r.N,
            "D": r.D,
            "C": r.C,
            "loss": r.loss,
            "value": r.value,
            "n": r.n,
            "used": bool(u),
        }
        for r, u in zip(points.itertuples(), used, strict=True)
    ]
    fit = MetricFit(
        metric=metric,
        decoding=decoding,
        group=group,
        axis=axis,
        scale=scale,
        points=rows,
        direct=direct,
        two_stage=two,
        budget=budget,
        c_of_n=c_of_n,
        warnings=notes,
    )
    sizes = np.sort(points["N"].unique())
    if not rollout or len(sizes) < ROLLOUT_MIN_SIZES:
        return fit
    small = points["N"] < sizes[-1]
    train_d, train_t, _ = _forms(points[small], axis, scale, pts[pts["N"] < sizes[-1]])
    trained = dataclasses.replace(fit, direct=train_d, two_stage=train_t)
    test = points[~small]
    if axis == COMPUTE_AXIS:  # the frontier points of the held-out size, the ones the law describes
        on = np.asarray(fit.direct["used"]) if fit.direct else np.zeros(len(points), dtype=bool)
        test = points[~small & on] if (~small & on).any() else test
    return dataclasses.replace(fit, rollout=_errors(trained, test, len(sizes) - 1))


def fit_metrics(
    metrics: Any, losses: Any = None, *, rollout: bool = True
) -> tuple[list[MetricFit], list[str]]:
    """Every (metric, decoding, group) of metrics.csv on both axes (``losses``: see ``metric_points``);
    returns (fits, why some were not fitted)."""
    pts = metric_points(metrics, losses)
    fits, skipped = [], []
    for (metric, decoding, group), sub in pts.groupby(["metric", "decoding", "group"], sort=True):
        for axis in AXES:
            try:
                fits.append(
                    fit_metric(
                        sub,
                        axis,
                        metric=str(metric),
                        decoding=str(decoding),
                        group=str(group),
                        rollout=rollout,
                    )
                )
            except (ValueError, np.linalg.LinAlgError) as e:
                skipped.append(f"{metric} {decoding or '-'} {group} vs {axis}: {e}")
    return fits, skipped


def metric_file(metric: str, group: str) -> str:
    """fits/ file name of one metric's fits for one group (every decoding and both axes in it)."""
    return f"{FILE_PREFIX}{metric}-{group}.json"


def write_metric_fits(out_dir: str | Path, metrics: Any, losses: Any = None) -> tuple[list[Path], list[str]]:
    """fits/metric-<metric>-<group>.json (a JSON list of ``MetricFit``) for every metric and group; earlier
    metric-*.json files this run did not rewrite are removed (they describe another metrics.csv)."""
    from florenz_scaling.files import write_atomic

    out = Path(out_dir)
    fits, skipped = fit_metrics(metrics, losses)
    by_file: dict[str, list[MetricFit]] = {}
    for f in fits:
        by_file.setdefault(metric_file(f.metric, f.group), []).append(f)
    written = []
    for name, group_fits in sorted(by_file.items()):
        text = json.dumps([f.to_dict() for f in group_fits], indent=2, allow_nan=False)
        write_atomic(out / name, text + "\n")
        written.append(out / name)
    for stale in out.glob(f"{FILE_PREFIX}*.json"):
        if stale not in written:
            stale.unlink()
    return written, skipped


def read_metric_file(path: str | Path) -> list[MetricFit]:
    """The fits in one fits/metric-*.json file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [MetricFit.from_dict(d) for d in (data if isinstance(data, list) else [data])]


__all__ = [
    "AXES",
    "METRIC_SCALE",
    "MetricFit",
    "direct_q",
    "fit_direct",
    "fit_metric",
    "fit_metrics",
    "fit_sigmoid",
    "metric_file",
    "metric_points",
    "metric_scale",
    "read_metric_file",
    "sigmoid_q",
    "write_metric_fits",
]
