"""The result of one scaling-law fit: parameters, intervals, diagnostics; JSON round trip and prediction."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from florenz_scaling.spec import LAWS

# Which keyword inputs each law's predict() takes, and its parameter names (the JSON keys).
LAW_INPUTS: dict[str, tuple[str, ...]] = {
    "compute": ("C",),
    "saturating-compute": ("C",),
    "size-data": ("P", "S"),
    "chinchilla": ("N", "D"),
}
LAW_PARAMS: dict[str, tuple[str, ...]] = {
    "compute": ("alpha0", "alpha1"),
    "size-data": ("beta0", "beta1", "beta2"),
    "chinchilla": ("E", "A", "B", "alpha", "beta"),
    "saturating-compute": ("E", "A", "alpha"),
}
assert set(LAW_PARAMS) == set(LAW_INPUTS) == set(LAWS), "every law in spec.LAWS needs its inputs and params"


def jsonable(x: Any) -> Any:
    """Convert numpy scalars/arrays and tuples to plain JSON types; non-finite floats become None.

    Done once at construction so that ``from_json(to_json())`` compares equal to the original.
    """
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [jsonable(v) for v in x.tolist()]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


@dataclass(frozen=True)
class FitResult:
    """One fitted law. ``params`` hold full-precision floats (never round before predicting)."""

    law: str
    params: dict[str, float]
    ci: dict[str, list[float]] = field(default_factory=dict)
    objective: float = float("nan")
    status: str = ""
    n_points: int = 0
    used: list[bool] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    group: str | None = None
    task: str | None = None
    lang: str | None = None

    def __post_init__(self) -> None:
        if self.law not in LAW_PARAMS:
            raise ValueError(f"unknown law {self.law!r}; expected one of {', '.join(LAWS)}")
        object.__setattr__(self, "params", {k: float(v) for k, v in self.params.items()})
        object.__setattr__(self, "ci", {k: [float(v[0]), float(v[1])] for k, v in self.ci.items()})
        obj = float(self.objective) if self.objective is not None else float("nan")
        object.__setattr__(self, "objective", obj)
        object.__setattr__(self, "n_points", int(self.n_points))
        object.__setattr__(self, "used", [bool(u) for u in self.used])
        object.__setattr__(self, "extras", jsonable(self.extras))

    # ---- serialisation ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the fields (what ``to_json`` writes)."""
        d = dataclasses.asdict(self)
        if not math.isfinite(self.objective):
            d["objective"] = None
        return d

    def to_json(self) -> str:
        """JSON text; floats are written with ``repr`` precision, so reading it back is exact."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> FitResult:
        """Inverse of ``to_json``."""
        d = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        if d.get("objective") is None:
            d["objective"] = float("nan")
        return cls(**d)

    def replace(self, **changes: Any) -> FitResult:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    # ---- prediction ---------------------------------------------------------------------------------------
    def predict(
        self, *, interval: str | None = None, level: float = 0.95, **inputs: Any
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predicted loss at the inputs (compute, saturating-compute: C; size-data: P, S; chinchilla: N, D).

        ``interval="confidence"`` (band of the mean) or ``"prediction"`` (a new observation) returns
        ``(mean, low, high)`` for the OLS laws, from the stored covariance and residual variance with
        Student-t quantiles, computed in log10 space and transformed back.
        """
        need = LAW_INPUTS[self.law]
        missing = [k for k in need if k not in inputs]
        extra = [k for k in inputs if k not in need]
        if missing or extra:
            raise TypeError(f"{self.law}.predict takes {', '.join(need)}; got {', '.join(sorted(inputs))}")
        x = np.broadcast_arrays(*[np.asarray(inputs[k], dtype=float) for k in need])
        p = self.params
        if self.law in ("compute", "size-data"):
            design = np.stack([np.ones_like(x[0]), *[np.log10(v) for v in x]], axis=-1)
            names = LAW_PARAMS[self.law]
            coef = np.array([p[k] for k in names])
            mean_log = design @ coef
            if interval is None:
                return 10.0**mean_log
            if interval not in ("confidence", "prediction"):
                raise ValueError("interval must be None, 'confidence' or 'prediction'")
            cov = self.extras.get("cov")
            df = self.extras.get("df", 0)
            if cov is None or not df or df <= 0:
                raise ValueError("no residual degrees of freedom: intervals are undefined for this fit")
            from scipy import stats

            cov = np.asarray(cov, dtype=float)
            var = np.einsum("...i,ij,...j->...", design, cov, design)
            if interval == "prediction":
                var = var + float(self.extras["sigma2"])
            half = stats.t.ppf(0.5 + level / 2.0, df) * np.sqrt(var)
            return 10.0**mean_log, 10.0 ** (mean_log - half), 10.0 ** (mean_log + half)
        if interval is not None:
            raise ValueError(f"{self.law}: intervals come from the bootstrap (see ci/extras), not predict()")
        if self.law == "chinchilla":
            return p["E"] + p["A"] / x[0] ** p["alpha"] + p["B"] / x[1] ** p["beta"]
        return p["E"] + p["A"] * x[0] ** (-p["alpha"])
