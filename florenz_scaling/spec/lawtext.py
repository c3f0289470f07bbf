"""Laws a sweep writes out in ``fit.laws``, checked at spec load with the standard library only.

The format is the one of a ``--laws`` file (``fit.laws.user``): ``{name: {expr, params, response, …}}``.
Here the structure is checked and the expression walked with ``ast`` against the same whitelist the fit
stage parses it with (numbers, the law's inputs and parameters, ``+ - * / **``, unary minus, parentheses,
``exp log log10 sqrt abs min max``), so a typo fails before anything is submitted, naming the field and the
law; the fit stage parses it again into the tree it evaluates (``fit.laws.expr``, which needs numpy).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from typing import Any

from florenz_scaling.spec.load import SpecError, check

SWEEP_INPUTS = ("N", "D", "C")  # the columns of a sweep's points table a written law may use
FUNCTIONS = ("exp", "log", "log10", "sqrt", "abs", "min", "max")
LAW_KEYS = ("expr", "params", "response", "inputs", "shared", "description")
PARAM_KEYS = ("bounds", "start", "scale", "role")
RESPONSES = ("log", "raw")
SCALES = ("linear", "log")
ROLES = ("", "exponent", "scale", "intercept")
_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)


def _number(x: Any, path: str) -> float:
    ok = not isinstance(x, bool) and isinstance(x, (int, float, str))
    try:
        value = float(x) if ok else math.nan  # YAML 1.1 reads 1e-3 as a string
    except ValueError:
        value = math.nan
    check(not math.isnan(value), path, f"{x!r} is not a number", "write e.g. 1e-3 or 0.5")
    return value


def _param(path: str, d: Any) -> None:
    check(isinstance(d, Mapping), path, "expected a mapping with bounds, start, scale")
    unknown = sorted(str(k) for k in d if k not in PARAM_KEYS)
    check(not unknown, f"{path}.{''.join(unknown[:1])}", "unknown key", f"use {', '.join(PARAM_KEYS)}")
    bounds = d.get("bounds")
    check(isinstance(bounds, (list, tuple)) and len(bounds) == 2, f"{path}.bounds", "must be [low, high]")
    lo, hi = (_number(b, f"{path}.bounds[{i}]") for i, b in enumerate(bounds))
    check(lo < hi, f"{path}.bounds", f"[{lo:g}, {hi:g}] is empty", "write [low, high] with low < high")
    scale = d.get("scale", "linear")
    check(scale in SCALES, f"{path}.scale", f"{scale!r} is not a scale", f"use {' or '.join(SCALES)}")
    check(scale != "log" or lo > 0, f"{path}.bounds", "a log-scale parameter needs a positive lower bound")
    role = d.get("role", "")
    check(role in ROLES, f"{path}.role", f"{role!r} is not a role", f"use {', '.join(r for r in ROLES if r)}")
    start = d.get("start", [])
    for i, s in enumerate(start if isinstance(start, (list, tuple)) else [start]):
        v = _number(s, f"{path}.start[{i}]")
        check(lo <= v <= hi, f"{path}.start[{i}]", f"{v:g} is outside the bounds [{lo:g}, {hi:g}]")


def _expression(path: str, law: str, text: Any, names: set[str]) -> set[str]:
    """The names ``text`` uses; anything off the whitelist is a ``SpecError`` naming it and the law."""
    check(isinstance(text, str) and bool(text.strip()), path, f"law {law!r}: expr must be a formula string")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise SpecError(path, f"law {law!r}: {text!r} is not an expression ({e.msg})") from None
    used: set[str] = set()
    callees: set[int] = set()  # the Name nodes that are a whitelisted call's function, not values
    allowed = f"numbers, {', '.join(sorted(names))}, + - * / **, parentheses and {', '.join(FUNCTIONS)}"
    for node in ast.walk(tree.body):
        seg = ast.get_source_segment(text.strip(), node) or type(node).__name__
        if isinstance(node, ast.Call):
            fn = node.func.id if isinstance(node.func, ast.Name) else None
            ok = fn in FUNCTIONS and not node.keywords
            check(ok, path, f"law {law!r}: call {seg!r} is not allowed", f"allowed: {allowed}")
            callees.add(id(node.func))
        elif isinstance(node, ast.Name) and id(node) not in callees:
            known = node.id in names
            check(known, path, f"law {law!r}: unknown name {node.id!r}", f"allowed: {allowed}")
            used.add(node.id)
        elif isinstance(node, ast.Constant):
            ok = isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
            check(ok, path, f"law {law!r}: constant {seg!r} is not allowed", f"allowed: {allowed}")
        elif not isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Load, *_OPS)):
            raise SpecError(path, f"law {law!r}: {type(node).__name__} {seg!r} is not allowed", allowed)
    return used


def check_law(path: str, name: str, d: Any) -> None:
    """One law written in a sweep (``fit.laws.<name>``): structure, parameters and expression."""
    check(isinstance(d, Mapping), path, f"law {name!r}: expected a mapping with expr and params")
    unknown = sorted(str(k) for k in d if k not in LAW_KEYS)
    check(not unknown, f"{path}.{''.join(unknown[:1])}", "unknown key", f"use {', '.join(LAW_KEYS)}")
    params = d.get("params")
    check(isinstance(params, Mapping) and bool(params), f"{path}.params", "must map each parameter to bounds")
    for p, spec in params.items():
        ok = isinstance(p, str) and p.isidentifier() and p not in FUNCTIONS and p not in SWEEP_INPUTS
        check(ok, f"{path}.params.{p}", f"law {name!r}: {p!r} cannot name a parameter")
        _param(f"{path}.params.{p}", spec)
    inputs = d.get("inputs", list(SWEEP_INPUTS))
    bad = [i for i in inputs if i not in SWEEP_INPUTS] if isinstance(inputs, list) else [inputs]
    check(
        not bad,
        f"{path}.inputs",
        f"{''.join(map(repr, bad[:1]))} is not a column of a sweep's points",
        f"use {', '.join(SWEEP_INPUTS)}",
    )
    used = _expression(f"{path}.expr", name, d.get("expr"), {*inputs, *params})
    check(bool(used - set(params)), f"{path}.expr", f"law {name!r}: uses none of {', '.join(inputs)}")
    response = d.get("response", "log")
    check(response in RESPONSES, f"{path}.response", f"{response!r}", f"use {' or '.join(RESPONSES)}")
    shared = d.get("shared", [])
    off = [s for s in shared if s not in params] if isinstance(shared, list) else [shared]
    check(not off, f"{path}.shared", f"{''.join(map(repr, off[:1]))} is not a parameter of law {name!r}")
