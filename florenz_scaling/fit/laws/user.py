"""Laws a researcher writes in YAML, turned into ``ExprLaw`` objects and registered next to the built-ins.

    laws:
      chinchilla-tied:
        expr: "E + A * N**(-alpha) + B * D**(-alpha)"
        params:
          E:     {bounds: [0, 10],     start: [0.5, 1.5, 2.5]}
          A:     {bounds: [1e-3, 1e6], start: [100, 1000], scale: log}
          alpha: {bounds: [0.01, 2],   start: [0.1, 0.3, 0.5], role: exponent}
        response: log          # residuals on log L (default), or raw
        inputs: [N, D]         # optional: by default the names of INPUTS the expression uses
        shared: [alpha]        # optional: what a joint fit shares across groups

The expression goes through the whitelist parser of ``fit.laws.expr`` (never ``eval``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from florenz_scaling.fit.laws import expr as ex
from florenz_scaling.fit.laws.core import LawError, Param, register, set_definition_loader
from florenz_scaling.fit.laws.exprlaw import ExprLaw

INPUTS = ("N", "D", "C", "U")  # the table columns an expression may use without listing ``inputs``
LAW_KEYS = {"expr", "params", "response", "inputs", "shared", "description"}
PARAM_KEYS = {"bounds", "start", "scale", "role"}


def _number(x: Any, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, str)):
        raise LawError(f"{where}: {x!r} is not a number")
    try:
        return float(x)  # YAML 1.1 reads 1e-3 as a string: accept numeric strings
    except ValueError:
        raise LawError(f"{where}: {x!r} is not a number") from None


def _param(law: str, name: str, d: Any) -> Param:
    where = f"law {law!r}, parameter {name!r}"
    if not isinstance(name, str) or not name.isidentifier() or name in ex.FUNCTIONS:
        raise LawError(f"law {law!r}: {name!r} cannot name a parameter")
    if not isinstance(d, Mapping):
        raise LawError(f"{where}: expected a mapping with bounds, start, scale")
    unknown = set(d) - PARAM_KEYS
    if unknown:
        raise LawError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    bounds = d.get("bounds")
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        raise LawError(f"{where}: bounds must be [low, high]")
    start = d.get("start", [])
    start = start if isinstance(start, (list, tuple)) else [start]
    try:
        return Param(
            name,
            tuple(_number(b, where) for b in bounds),  # type: ignore[arg-type]
            tuple(_number(s, where) for s in start),
            str(d.get("scale", "linear")),
            str(d.get("role", "")),
        )
    except LawError as e:
        raise LawError(f"law {law!r}: {e}") from None


def law_from_definition(name: str, d: Any, source: str = "") -> ExprLaw:
    """One law from its YAML mapping (see the module docstring); refusals name the law and the text."""
    if not isinstance(name, str) or not name:
        raise LawError(f"a law needs a name; got {name!r}")
    if not isinstance(d, Mapping):
        raise LawError(f"law {name!r}: expected a mapping with expr and params")
    unknown = set(d) - LAW_KEYS
    if unknown:
        raise LawError(f"law {name!r}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    if not isinstance(d.get("expr"), str):
        raise LawError(f"law {name!r}: expr must be a string")
    if not isinstance(d.get("params"), Mapping) or not d["params"]:
        raise LawError(f"law {name!r}: params must map each parameter to its bounds and starts")
    params = tuple(_param(name, k, v) for k, v in d["params"].items())
    pnames = [p.name for p in params]
    if "inputs" in d:
        inputs = d["inputs"]
        if not isinstance(inputs, list) or not all(isinstance(i, str) and i.isidentifier() for i in inputs):
            raise LawError(f"law {name!r}: inputs must be a list of column names")
        inputs = tuple(inputs)
    else:  # the expression's names from the standard columns, refused at parse if anything else
        used = ex.names_in(ex.parse(d["expr"], (*INPUTS, *pnames), name))
        inputs = tuple(i for i in INPUTS if i in used and i not in pnames)
    shared = d.get("shared", [p.name for p in params if p.role == "exponent"])
    if not isinstance(shared, list):
        raise LawError(f"law {name!r}: shared must be a list of parameter names")
    return ExprLaw(
        name,
        inputs,
        params,
        response=str(d.get("response", "log")),
        formula=str(d.get("description", "")) or f"L = {d['expr']}",
        shared=tuple(shared),
        definition=dict(d),
        source=source or "definition",
        expr=d["expr"],
    )


def parse_laws(doc: Any, source: str = "") -> list[ExprLaw]:
    """The laws of a parsed YAML document ``{"laws": {name: definition}}`` (not registered)."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("laws"), Mapping) or set(doc) - {"laws"}:
        raise LawError(f"{source or 'law file'}: expected one top-level key 'laws' mapping names to laws")
    return [law_from_definition(str(k), v, source) for k, v in doc["laws"].items()]


def load_laws(path: str | Path) -> list[str]:
    """Register the laws of a YAML file; returns their names."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise LawError(f"law file {p} not found")
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise LawError(f"law file {p}: not valid YAML ({e})") from None
    laws = parse_laws(doc, str(p))
    return [register(law).name for law in laws]


set_definition_loader(law_from_definition)
