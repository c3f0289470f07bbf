"""The gap law: how the loss gap between two groups (default UC − SC) moves with compute.

Form: log10(L_A / L_B) = γ0 + γ1·log10 C, by OLS over the runs that have a point in both groups (the same
model at the same compute, so the gap is paired and the run-to-run noise common to both groups cancels).

Why this form (after Marin's relative scaling laws, arXiv 2510.24626, which fit the gap between
subpopulations against compute): it is exactly the difference of the two groups' paper Eq. 1 laws
(log10 L = α0 + α1·log10 C), so γ1 = α1[A] − α1[B] and the slope's interval answers "do the exponents differ?"
in the paper's own coordinates; it is the relative gap, so it does not depend on the loss's units; and unlike
log(L_A − L_B) it can cross zero, so "where does the gap close?" has a finite answer, C* = 10^(−γ0/γ1),
whose interval is Fieller's (the compute where the confidence band of the mean gap contains 0).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from florenz_scaling.fit.result import jsonable


@dataclass(frozen=True)
class GapFit:
    """A fitted gap law. ``params`` are gamma0, gamma1 with t ``ci`` and ``pvalues``; ``closes`` is True
    (at ``close_at`` GMACs/FLOPs, interval ``close_ci``), False, or None (no evidence either way), and
    ``evidence`` says why in words. ``points`` are the paired runs: C, L_A, L_B."""

    group_a: str
    group_b: str
    params: dict[str, float]
    ci: dict[str, list[float]]
    pvalues: dict[str, float]
    n_points: int
    closes: bool | None
    evidence: str
    close_at: float | None = None
    close_ci: list[float | None] | None = None
    max_compute: float | None = None
    gap_at_max: float | None = None  # L_A / L_B − 1 the fit gives at the largest compute measured
    form: str = "log10(L_A / L_B) = gamma0 + gamma1 * log10(C)"
    points: list[dict[str, Any]] = field(default_factory=list)
    kind: str = "gap"

    def __post_init__(self) -> None:
        for name in ("params", "ci", "pvalues", "close_ci", "points"):
            object.__setattr__(self, name, jsonable(getattr(self, name)))

    @property
    def name(self) -> str:
        return f"{self.group_a} − {self.group_b}"

    def to_json(self) -> str:
        """JSON text (non-finite values as null)."""
        return json.dumps(asdict(self), indent=2, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> GapFit:
        """Inverse of ``to_json``."""
        d = json.loads(text)
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def paired_gap(points: Any, group_a: str, group_b: str) -> Any:
    """Runs with a point in both groups: columns run_id, C, loss_a, loss_b (a group-level points table)."""
    import pandas as pd

    for g in (group_a, group_b):
        if g not in set(points["group"].astype(str)):
            raise ValueError(f"no points for group {g}")
    if "run_id" not in points.columns:
        raise ValueError("a gap law pairs the groups by run: the points need a run_id column")
    a = points[points["group"].astype(str) == group_a][["run_id", "C", "loss"]]
    b = points[points["group"].astype(str) == group_b][["run_id", "loss"]]
    both = pd.merge(a, b, on="run_id", suffixes=("_a", "_b"))
    if len(both) < 3:
        raise ValueError(f"only {len(both)} runs with both {group_a} and {group_b}: a gap law needs 3")
    return both


def _fieller(coef: np.ndarray, cov: np.ndarray, t: float) -> tuple[list[float | None], bool]:
    """The set {x: (γ0 + γ1 x)² ≤ t² var(γ0 + γ1 x)} as [lo, hi] in log10 C; bounded only when γ1 is
    significant (then the quadratic opens upwards)."""
    g0, g1 = coef
    a = g1 * g1 - t * t * cov[1, 1]
    b = 2.0 * (g0 * g1 - t * t * cov[0, 1])
    c = g0 * g0 - t * t * cov[0, 0]
    disc = b * b - 4 * a * c
    if a <= 0 or disc < 0:
        return [None, None], False
    r = sorted(((-b - math.sqrt(disc)) / (2 * a), (-b + math.sqrt(disc)) / (2 * a)))
    return r, True


def fit_gap(points: Any, group_a: str = "UC", group_b: str = "SC", *, level: float = 0.95) -> GapFit:
    """Fit the gap law of ``group_a`` over ``group_b`` against compute (see the module docstring)."""
    from scipy import stats

    from florenz_scaling.fit.laws import ols

    both = paired_gap(points, group_a, group_b)
    C = both["C"].to_numpy(float)
    ratio = both["loss_a"].to_numpy(float) / both["loss_b"].to_numpy(float)
    x = np.log10(C)
    fit = ols(np.log10(ratio), np.column_stack([np.ones(len(x)), x]), ("gamma0", "gamma1"), level)
    if "ci" not in fit:
        raise ValueError("no residual degrees of freedom for the gap law")
    g0, g1 = fit["coef"]["gamma0"], fit["coef"]["gamma1"]
    lo, hi = fit["ci"]["gamma1"]
    at_max = g0 + g1 * x.max()
    common = dict(
        group_a=group_a,
        group_b=group_b,
        params=fit["coef"],
        ci=fit["ci"],
        pvalues=fit["pvalues"],
        n_points=len(x),
        max_compute=float(C.max()),
        gap_at_max=float(10**at_max - 1),
        points=[
            {"run_id": str(r), "C": float(c), "loss_a": float(la), "loss_b": float(lb)}
            for r, c, la, lb in both[["run_id", "C", "loss_a", "loss_b"]].itertuples(index=False)
        ],
    )
    p1 = fit["pvalues"]["gamma1"]
    slope = f"gamma1 = {g1:.3g} [{lo:.3g}, {hi:.3g}] per decade of compute (p = {p1:.2g})"
    if lo <= 0 <= hi:
        return GapFit(
            **common, closes=None, evidence=f"no evidence that the gap moves with compute: {slope} includes 0"
        )
    if np.sign(g1) == np.sign(at_max):
        return GapFit(
            **common, closes=False, evidence=f"does not close: the gap widens with compute, {slope}"
        )
    root = -g0 / g1
    t = float(stats.t.ppf(0.5 + level / 2.0, fit["df"]))
    (r_lo, r_hi), bounded = _fieller(np.array([g0, g1]), np.asarray(fit["cov"]), t)
    close_ci = [10**r_lo, 10**r_hi] if bounded else [None, None]
    beyond = root - x.max()
    return GapFit(
        **common,
        closes=True,
        close_at=float(10**root),
        close_ci=close_ci,
        evidence=(
            f"closes at C ≈ {10**root:.3g} ({beyond:.2g} decades beyond the largest run, an "
            f"extrapolation): {slope}"
        ),
    )
