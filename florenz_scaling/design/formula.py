"""A registry law in the form the fast refits of ``design.lsq`` take: formula laws as they are, the built-in
log-sum-exp laws (``chinchilla``, ``saturating-compute``) through an adapter to their formula.

Why an adapter and not a second fitter. ``Law.fit`` of ``chinchilla`` runs Hoffmann's 4,500-start L-BFGS-B
(or variable projection below 20 points): about a second per fit, which is what made the tolerance replay of
a 225-run pool take hours. The same law written as a formula, E + Σ_j A_j·x_j^(−α_j), with A_j and E on a
log scale (the LSE recipe's a = log A, e = log E) and the objective of the recipe the replay used
(``method="auto"``: Huber δ = 1e-3 on log residuals, summed, from 20 points; below that variable
projection's relative SSE, Σ((L̂ − L)/L)²; ``lsq``'s "lse-auto"), is fitted by ``design.lsq`` from a few
warm starts in milliseconds; its optima are the built-in fitter's to the tolerance the tests state. The
random starts of the adapter are drawn from the box of Hoffmann's grid (a, b ∈ [0, 25], e ∈ [−1, 1],
α ∈ [0, 2]), not from the recipe's wide bounds, which exist only to keep exp() in range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from florenz_scaling.fit.laws import ExprLaw, Param

# The LSE recipe's log-space bounds (``fit.chinchilla``: COEF_BOUNDS, E_LOWER, EXP_BOUNDS).
COEF_BOUNDS = (math.exp(-20.0), math.exp(60.0))
E_BOUNDS = (math.exp(-20.0), math.exp(20.0))
EXP_BOUNDS = (0.0, 5.0)
# Hoffmann's grid box in working space: where random starts are drawn.
START_COEF, START_E, START_EXP = (0.0, 25.0), (-1.0, 1.0), (0.0, 2.0)


@dataclass(frozen=True)
class Formula:
    """A law ``design.lsq`` can fit: the formula law, its objective, and the box random starts come from
    (working space; None = the law's own bounds)."""

    law: Any
    objective: str
    start_lo: np.ndarray | None = None
    start_hi: np.ndarray | None = None


def formula_of(law: Any) -> Formula | None:
    """The formula form of ``law`` (a registry law object), or None for a law with none (the OLS laws)."""
    family = getattr(law, "family", "")
    if family == "expr":
        return Formula(law, law.default_objective())
    if family != "lse":
        return None
    coefs, exps, inputs = law.coefs, law.exponents, law.inputs
    terms = " + ".join(f"{a} * {x}**(-{e})" for a, e, x in zip(coefs, exps, inputs, strict=True))
    by_name: dict[str, tuple[Param, tuple[float, float]]] = {
        "E": (Param("E", E_BOUNDS, scale="log"), START_E)
    }
    for a, e in zip(coefs, exps, strict=True):
        by_name[a] = (Param(a, COEF_BOUNDS, scale="log"), START_COEF)
        by_name[e] = (Param(e, EXP_BOUNDS), START_EXP)
    # The built-in's parameter order, so that a fit's parameters line up with ``Law.fit``'s by position too.
    params = tuple(by_name[n][0] for n in law.param_names)
    box = np.array([by_name[n][1] for n in law.param_names], dtype=float)
    flaw = ExprLaw(
        law.name,
        tuple(inputs),
        params,
        expr=f"E + {terms}",
        formula=law.formula,
        shared=tuple(law.shared),
    )
    return Formula(flaw, "lse-auto", box[:, 0], box[:, 1])
