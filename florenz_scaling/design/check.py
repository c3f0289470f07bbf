"""Can a design identify the law it is meant for? Warnings before anything runs (``plan SWEEP --check``).

Three checks per law, on the design's points alone (no losses yet):
- points: at least as many runs as the law has parameters, and two more for residual degrees of freedom
  (else no uncertainty can be estimated); at least ``Law.levels`` distinct values of each input.
- tokens per parameter: laws in N and D need D/N to vary. A fixed-ratio design (every run at the same
  D/N, as "Chinchilla-optimal" ladders often are) makes log N and log D collinear, so the two exponents
  cannot be told apart (arXiv 2605.08541: varying D/N beat fixed-ratio designs in 97% of cases). The spread
  is max(D/N) / min(D/N), a ratio of ratios, so the unit of D (samples or tokens) does not matter.
- condition number of the design: of the law's Jacobian at nominal parameters, columns scaled to unit
  length, at the law's nominal parameters (``Law.nominal``): for the log-sum-exp laws exponents 0.3 and the
  terms of the loss equal at the design's geometric centre (centred log-coefficients 0), a unit-free
  stand-in for a law not yet fitted; for formula laws the middle of each parameter's start values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from florenz_scaling.design.model import LinearModel, law_inputs
from florenz_scaling.fit import FitResult, get_law

MIN_RATIO_SPREAD = 4.0
# Above a law's ``max_condition`` the parameters trade off so strongly that the fit's intervals are
# meaningless (1e3 for the non-linear laws, 10 for the OLS laws). Measured: the paper's 4 × 4 grid 71
# (chinchilla) / 1.0 (size-data), the OLMo ladder 147 / 2.1, a D/N spread of 1.5 over five sizes 136 / 15, an
# exactly fixed ratio ~1e16 (tests/test_design_check.py). ``Law.levels``: distinct values each input needs.


@dataclass(frozen=True)
class Finding:
    """One problem of a design for one law: which check failed and what it means."""

    law: str
    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.law}: {self.check}: {self.message}"


def nominal_model(law: str, X: np.ndarray) -> LinearModel:
    """The law linearised at unit-free nominal parameters on the design ``X`` (rows of law inputs)."""
    X = np.asarray(X, dtype=float)
    fit = FitResult(law=law, params=get_law(law).nominal(X))
    model = LinearModel(fit, X, np.zeros(len(X)))
    return model


def condition_number(law: str, X: np.ndarray) -> float:
    """Condition number of the column-scaled Jacobian of the law on design ``X`` at nominal parameters."""
    J = nominal_model(law, X).jacobian(np.asarray(X, dtype=float))
    if get_law(law).linear_in_logs:
        J = J[:, 1:] - J[:, 1:].mean(axis=0)  # the intercept is always identified: condition the slopes
    norms = np.linalg.norm(J, axis=0)
    if np.any(norms == 0):
        return math.inf
    c = float(np.linalg.cond(J / norms))
    return c if math.isfinite(c) else math.inf


def check_design(
    points: Any, law: str, *, min_ratio_spread: float = MIN_RATIO_SPREAD, max_condition: float | None = None
) -> list[Finding]:
    """Findings for one law on a design's points (a table with the law's inputs N, D and/or C)."""
    inputs = law_inputs(law)
    X = np.column_stack([np.asarray(points[k], dtype=float) for k in inputs])
    found = get_law(law)
    n, p = len(X), found.n_params
    out: list[Finding] = []
    if n < p:
        out.append(Finding(law, "points", f"{n} runs cannot determine its {p} parameters"))
    elif n < p + 2:
        out.append(
            Finding(
                law,
                "points",
                f"{n} runs for {p} parameters leave {n - p} residual degrees of "
                "freedom: the noise, and so every interval, is barely estimated",
            )
        )
    for j, name in enumerate(inputs):
        levels = len(np.unique(np.round(np.log(X[:, j]), 9)))
        if levels < found.levels:
            out.append(
                Finding(
                    law,
                    "levels",
                    f"only {levels} distinct {name} value(s); needs at least "
                    f"{found.levels} to identify the {name} term",
                )
            )
    if {"N", "D"} <= set(inputs) and n:
        ratio = X[:, inputs.index("D")] / X[:, inputs.index("N")]
        spread = float(ratio.max() / ratio.min())
        if spread < min_ratio_spread:
            out.append(
                Finding(
                    law,
                    "tokens-per-parameter",
                    f"D/N spans only a factor {spread:.3g} (< {min_ratio_spread:g}): N and D move "
                    "together, so their exponents trade off; add runs at other D/N",
                )
            )
    if n >= 2:
        cond = condition_number(law, X)
        limit = found.max_condition if max_condition is None else max_condition
        if cond > limit:
            shown = "inf" if math.isinf(cond) else f"{cond:.3g}"
            out.append(
                Finding(
                    law,
                    "condition",
                    f"design condition number {shown} (> {limit:g}): the "
                    "parameters trade off; widen the ranges of N and D/N",
                )
            )
    return out


def check_plan(spec: Any, laws: Sequence[str] | None = None, **kwargs: Any) -> list[Finding]:
    """Findings for each law (default: the sweep's ``fit.laws``) on the runs ``plan.make_plan`` gives."""
    import pandas as pd

    from florenz_scaling.plan import make_plan

    plan = make_plan(spec)
    points = pd.DataFrame(
        {
            "N": [float(r.params) for r in plan],
            "D": [float(r.seen_samples) for r in plan],
            "C": [float(r.compute_gmacs) for r in plan],
        }
    )
    out: list[Finding] = []
    for law in laws or spec.fit.laws:
        out += check_design(points, law, **kwargs)
    return out
