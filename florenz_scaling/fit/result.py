"""The result of one scaling-law fit: parameters, intervals, statistics; JSON round trip and prediction.

The statistics are typed fields (covariance, degrees of freedom, residual variance, p-values, at-bound flags,
warnings, the bootstrap's summary, the rollout check). ``solver`` holds the estimator's own diagnostics
(iterations, starts, local optima, condition numbers) and ``extras`` only what belongs to one law (which
points Eq. 1 used, the Chinchilla derived ratios, unit notes). ``from_json`` also reads fits/*.json written
before these fields existed, when everything lived under ``"extras"``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from florenz_scaling.fit.laws.core import ensure_law, get_law


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
class BootstrapSummary:
    """What ``fit.bootstrap`` did and found: its settings, failed resamples, and percentile summaries.

    A dataclass rather than a dict because one function writes it with a fixed set of keys and several
    readers (report, plots, the command, benchmarks) use them: a misspelt name then fails loudly. Only
    ``derived`` stays a mapping, since its keys name budgets chosen at fit time:
    ``{"N_opt@1e+12": {"ci": [low, high], "median": m}, "L@1e+10": {...}, ...}``.
    """

    n_resamples: int
    n_ok: int
    n_failed: int = 0
    failures: list[str] = field(default_factory=list)  # the first few error messages
    seed: int = 0
    level: float = 0.95
    unit: str = "run_id"  # what was resampled: the runs (groups_col) or, without that column, "row"
    n_runs: int = 0
    interval: str = "percentile"
    per_resample_fit: str = ""
    param_median: dict[str, float] = field(default_factory=dict)
    derived_point: dict[str, float | None] = field(default_factory=dict)  # of the full-data fit
    derived: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("failures", "param_median", "derived_point", "derived"):
            object.__setattr__(self, name, jsonable(getattr(self, name)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BootstrapSummary:
        """From its JSON object; keys this version does not know are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def derived_interval(self, name: str) -> tuple[float, float] | None:
        """The percentile interval of one derived quantity (e.g. ``"N_opt@1e+12"``), or None."""
        v = self.derived.get(name)
        ci = v.get("ci") if isinstance(v, dict) else None
        if not ci or len(ci) != 2 or None in ci:
            return None
        return float(ci[0]), float(ci[1])


VERDICTS = ("reliable", "weak", "not identifiable")


@dataclass(frozen=True)
class Verdict:
    """How far a fit can be believed, from measured diagnostics (``fit.verdict.assess`` decides).

    ``level`` is one of ``VERDICTS``; ``reasons`` say in words what set it (empty for "reliable" only when
    nothing was flagged); ``diagnostics`` hold the measured numbers (points per parameter, condition number,
    parameters at bounds, relative interval widths, rollout error).
    """

    level: str
    reasons: list[str] = field(default_factory=list)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.level not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}; got {self.level!r}")
        object.__setattr__(self, "reasons", [str(r) for r in self.reasons])
        object.__setattr__(self, "diagnostics", jsonable(self.diagnostics))

    @property
    def shown(self) -> bool:
        """Whether the fit may be shown as a result (not identifiable fits stay in their JSON only)."""
        return self.level != "not identifiable"

    def text(self) -> str:
        """The level and its reasons in one line."""
        return self.level + (f": {'; '.join(self.reasons)}" if self.reasons else "")


# Where the statistics lived in fits/*.json before they were fields: extras[key] -> field.
_OLD_FIELDS = {
    "method": "method",
    "df": "dof",
    "cov": "covariance",
    "sigma2": "residual_variance",
    "stderr": "stderr",
    "pvalues": "pvalues",
    "r2": "r2",
    "nit": "nit",
    "at_bound": "at_bound",
    "warnings": "warnings",
    "bootstrap": "bootstrap",
    "rollout": "rollout",
}
# Estimator diagnostics that lived in extras and now live in ``solver``.
_OLD_SOLVER = (
    "adj_r2",
    "tvalues",
    "condition_number",
    "rss",
    "objective_kind",
    "method_reason",
    "optimizer",
    "optimizer_message",
    "optimizer_status",
    "n_starts",
    "n_polished",
    "local_optima",
    "theta",
    "grad_inf_norm",
    "hessian_cond",
    "huber_objective",
)


def _upgrade(d: dict[str, Any]) -> dict[str, Any]:
    """A fit's JSON object in the old layout (statistics under "extras") in this one; new ones pass as is."""
    if any(new in d for new in _OLD_FIELDS.values()) or not isinstance(d.get("extras"), dict):
        return d
    d, extras = dict(d), dict(d["extras"])
    warnings = list(extras.get("warnings") or [])
    for old, new in _OLD_FIELDS.items():
        if old in extras:
            d[new] = extras.pop(old)
    d["solver"] = {k: extras.pop(k) for k in _OLD_SOLVER if k in extras}
    # A skipped bootstrap or a failed rollout was a string in place of its summary: now a warning.
    for name in ("bootstrap", "rollout"):
        if isinstance(d.get(name), str):
            warnings.append(f"{name} {d.pop(name)}")
    d["warnings"], d["extras"] = warnings, extras
    return d


@dataclass(frozen=True)
class FitResult:
    """One fitted law. ``params`` hold full-precision floats (never round before predicting).

    ``method`` is the estimator that produced ``params``: "ols" (Eq. 1 and 3, log10 space), "lbfgs" (Huber
    on log residuals, LSE parameters, multistart L-BFGS-B) or "varpro" (variable projection); how ``ci`` was
    obtained is ``interval_kind``. ``covariance``, ``dof``, ``residual_variance``, ``stderr``, ``pvalues``
    and ``r2`` come from OLS (None / empty otherwise); ``at_bound`` maps each parameter to "lower", "upper" or
    None (the nonlinear laws); ``rollout`` is ``fit.rollout``'s result; ``verdict`` is reliable / weak / not
    identifiable with its reasons (``fit.verdict.assess``).
    """

    law: str
    params: dict[str, float]
    ci: dict[str, list[float]] = field(default_factory=dict)
    objective: float = float("nan")
    status: str = ""
    n_points: int = 0
    used: list[bool] = field(default_factory=list)
    method: str = ""
    covariance: list[list[float]] | None = None
    dof: int | None = None
    residual_variance: float | None = None
    stderr: dict[str, float] = field(default_factory=dict)
    pvalues: dict[str, float] = field(default_factory=dict)
    r2: float | None = None
    nit: int | None = None
    at_bound: dict[str, str | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    bootstrap: BootstrapSummary | None = None
    rollout: dict[str, Any] | None = None
    verdict: Verdict | None = None  # None in files written before verdicts: see fit.verdict.verdict_of
    solver: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    group: str | None = None
    task: str | None = None
    lang: str | None = None

    def __post_init__(self) -> None:
        ensure_law(self.law, self.extras)  # unknown: refused, naming the known laws
        put = object.__setattr__
        put(self, "params", {k: float(v) for k, v in self.params.items()})
        put(self, "ci", {k: [float(v[0]), float(v[1])] for k, v in self.ci.items()})
        put(self, "objective", float(self.objective) if self.objective is not None else float("nan"))
        put(self, "n_points", int(self.n_points))
        put(self, "used", [bool(u) for u in self.used])
        put(self, "dof", None if self.dof is None else int(self.dof))
        put(self, "nit", None if self.nit is None else int(self.nit))
        put(self, "warnings", [str(w) for w in self.warnings])
        if isinstance(self.bootstrap, dict):
            put(self, "bootstrap", BootstrapSummary.from_dict(self.bootstrap))
        if isinstance(self.verdict, dict):
            put(self, "verdict", Verdict(**self.verdict))
        for name in (
            "covariance",
            "residual_variance",
            "stderr",
            "pvalues",
            "r2",
            "at_bound",
            "rollout",
            "solver",
            "extras",
        ):
            put(self, name, jsonable(getattr(self, name)))

    @property
    def interval_kind(self) -> str:
        """How ``ci`` was obtained: "bootstrap" (percentile), "t" (OLS Student-t) or "" (no intervals)."""
        if not self.ci:
            return ""
        return "bootstrap" if self.bootstrap is not None else "t"

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
        """Inverse of ``to_json``; also reads the older layout with every statistic under "extras"."""
        d = _upgrade(json.loads(text))
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
        """Predicted loss at the law's inputs (keywords, e.g. C=…; N=…, D=…; the paper's P, S for size-data).

        ``interval="confidence"`` (band of the mean) or ``"prediction"`` (a new observation) returns
        ``(mean, low, high)`` for the OLS laws, from ``covariance`` and ``residual_variance`` with Student-t
        quantiles on ``dof`` degrees of freedom, computed in log10 space and transformed back; the other laws'
        intervals come from the bootstrap.
        """
        law = get_law(self.law)
        x = law.named_inputs(inputs)
        if interval is None:
            return law.predict(self.params, **x)
        return law.bands(self, interval, level, x)
