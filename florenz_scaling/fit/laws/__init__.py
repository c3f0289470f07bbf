"""Laws as objects: the one registry (``get_law``), the built-ins, and laws a researcher writes in YAML.

``get_law(name)`` is how every other module reaches a law; ``load_laws(path)`` registers the laws of a YAML
file (``--laws FILE``). The paper's OLS fitters (``fit_compute``, ``fit_size_data``, ``ols``,
``pareto_frontier``) live in ``fit.laws.ols``.
"""

from florenz_scaling.fit.laws.builtin import PAPER_EQ1, PAPER_EQ3  # importing it registers the built-ins
from florenz_scaling.fit.laws.core import (
    Law,
    LawError,
    Param,
    builtin_names,
    get_law,
    is_law,
    law_names,
    register,
    unregister,
)
from florenz_scaling.fit.laws.expr import ExpressionError
from florenz_scaling.fit.laws.exprlaw import ExprLaw
from florenz_scaling.fit.laws.ols import fit_compute, fit_size_data, ols, pareto_frontier
from florenz_scaling.fit.laws.user import law_from_definition, load_laws, parse_laws

__all__ = [
    "PAPER_EQ1",
    "PAPER_EQ3",
    "ExprLaw",
    "ExpressionError",
    "Law",
    "LawError",
    "Param",
    "builtin_names",
    "fit_compute",
    "fit_size_data",
    "get_law",
    "is_law",
    "law_from_definition",
    "law_names",
    "load_laws",
    "ols",
    "pareto_frontier",
    "parse_laws",
    "register",
    "unregister",
]
