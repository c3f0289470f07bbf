"""Law expressions a researcher writes: a whitelist parser, a numpy evaluator and an exact differentiator.

The text is parsed by Python's ``ast`` module and every node is checked here, one kind at a time: numbers,
names of the law's inputs and parameters, ``+ - * / **``, unary minus, parentheses and the functions
``exp log log10 sqrt abs min max``. Anything else (attribute access, other calls, subscripts, lambdas,
comprehensions, unknown names) is refused with the law's name and the offending text. Nothing is ever
passed to ``eval``: the checked tree is rebuilt as our own ``Node`` objects and evaluated with numpy.

Derivatives are symbolic, over our own node kinds (exact, not finite differences). Nodes are interned
(hash-consed): equal subtrees are one object, so an evaluation memoised by object identity computes each
shared subexpression once for the prediction and all the Jacobian's columns together.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from florenz_scaling.fit.laws.core import LawError

FUNCTIONS = ("exp", "log", "log10", "sqrt", "abs", "min", "max")
MAX_LENGTH = 4000  # a law is one formula; a longer text is refused before parsing (deep nesting)
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_WHAT = {
    "Attribute": "attribute access",
    "Subscript": "subscript",
    "Lambda": "lambda",
    "ListComp": "list comprehension",
    "SetComp": "set comprehension",
    "DictComp": "dict comprehension",
    "GeneratorExp": "generator expression",
    "Compare": "comparison",
    "BoolOp": "boolean operator",
    "IfExp": "conditional expression",
    "NamedExpr": "assignment",
    "List": "list",
    "Tuple": "tuple",
    "Dict": "dict",
    "Set": "set",
    "JoinedStr": "f-string",
}


class ExpressionError(LawError):
    """An expression the whitelist refuses; the message names the law and the offending text."""


class Node:
    """One interned node: ``kind`` is num, var, +, -, *, /, **, neg, a function name, or select.

    ``select`` (from min/max and their derivatives) is where(args[0] <= args[1], args[2], args[3]);
    ``sign`` appears only in derivatives of abs.
    """

    __slots__ = ("args", "kind", "value")
    _table: dict[tuple, Node] = {}

    def __init__(self, kind: str, value: Any, args: tuple[Node, ...]) -> None:
        self.kind, self.value, self.args = kind, value, args

    @classmethod
    def make(cls, kind: str, value: Any = None, args: tuple[Node, ...] = ()) -> Node:
        key = (kind, value, tuple(id(a) for a in args))
        node = cls._table.get(key)
        if node is None:
            node = cls._table[key] = cls(kind, value, args)
        return node

    def __repr__(self) -> str:
        return show(self)


def num(x: float) -> Node:
    return Node.make("num", float(x))


def var(name: str) -> Node:
    return Node.make("var", name)


ZERO, ONE = num(0.0), num(1.0)


def _isnum(n: Node, v: float | None = None) -> bool:
    return n.kind == "num" and (v is None or n.value == v)


# ---- constructors that fold constants, so derivatives stay small ------------------------------------------
def add(a: Node, b: Node) -> Node:
    if _isnum(a, 0.0):
        return b
    if _isnum(b, 0.0):
        return a
    if _isnum(a) and _isnum(b):
        return num(a.value + b.value)
    return Node.make("+", None, (a, b))


def sub(a: Node, b: Node) -> Node:
    if _isnum(b, 0.0):
        return a
    if _isnum(a, 0.0):
        return neg(b)
    if _isnum(a) and _isnum(b):
        return num(a.value - b.value)
    return Node.make("-", None, (a, b))


def mul(a: Node, b: Node) -> Node:
    if _isnum(a, 0.0) or _isnum(b, 0.0):
        return ZERO
    if _isnum(a, 1.0):
        return b
    if _isnum(b, 1.0):
        return a
    if _isnum(a) and _isnum(b):
        return num(a.value * b.value)
    return Node.make("*", None, (a, b))


def div(a: Node, b: Node) -> Node:
    if _isnum(a, 0.0):
        return ZERO
    if _isnum(b, 1.0):
        return a
    return Node.make("/", None, (a, b))


def power(a: Node, b: Node) -> Node:
    if _isnum(b, 0.0):
        return ONE
    if _isnum(b, 1.0):
        return a
    return Node.make("**", None, (a, b))


def neg(a: Node) -> Node:
    if _isnum(a):
        return num(-a.value)
    if a.kind == "neg":
        return a.args[0]
    return Node.make("neg", None, (a,))


def call(fn: str, *args: Node) -> Node:
    return Node.make(fn, None, tuple(args))


def select(le_a: Node, le_b: Node, yes: Node, no: Node) -> Node:
    if yes is no:
        return yes
    return Node.make("select", None, (le_a, le_b, yes, no))


# ---- parsing -----------------------------------------------------------------------------------------------
def parse(text: str, names: Iterable[str], law: str) -> Node:
    """The checked tree of ``text``; ``names``: the law's inputs and parameters (the only names allowed)."""
    allowed = set(names)
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"law {law!r}: the expression is empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"law {law!r}: the expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ExpressionError(f"law {law!r}: {text!r} is not an expression ({e.msg})") from None
    src = text.strip()

    def refuse(node: ast.AST, what: str) -> ExpressionError:
        seg = ast.get_source_segment(src, node) or type(node).__name__
        return ExpressionError(
            f"law {law!r}: {what} {seg!r} is not allowed in an expression (allowed: numbers, the inputs and "
            f"parameters {', '.join(sorted(allowed))}, + - * / **, unary minus, parentheses and "
            f"{', '.join(FUNCTIONS)})"
        )

    def walk(node: ast.AST) -> Node:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise refuse(node, "constant")
            return num(node.value)
        if isinstance(node, ast.Name):
            if node.id not in allowed:
                raise refuse(node, "unknown name")
            return var(node.id)
        if isinstance(node, ast.BinOp):
            op = _BINARY.get(type(node.op))
            if op is None:
                raise refuse(node, "operator")
            a, b = walk(node.left), walk(node.right)
            return {"+": add, "-": sub, "*": mul, "/": div, "**": power}[op](a, b)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return neg(walk(node.operand))
            if isinstance(node.op, ast.UAdd):
                return walk(node.operand)
            raise refuse(node, "operator")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise refuse(node, "call")
            fn = node.func.id
            if fn not in FUNCTIONS:
                raise refuse(node, f"unknown function {fn!r} in")
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise refuse(node, "keyword or starred argument in")
            args = [walk(a) for a in node.args]
            if fn in ("min", "max"):
                if len(args) < 2:
                    raise refuse(node, f"{fn} needs at least two arguments:")
                out = args[0]
                for b in args[1:]:  # min(a, b) = a where a <= b; max(a, b) = a where b <= a
                    out = select(out, b, out, b) if fn == "min" else select(b, out, out, b)
                return out
            if len(args) != 1:
                raise refuse(node, f"{fn} takes one argument:")
            return call(fn, args[0])
        raise refuse(node, _WHAT.get(type(node).__name__, type(node).__name__))

    return walk(tree.body)


# ---- evaluation --------------------------------------------------------------------------------------------
_UNARY = {"exp": np.exp, "log": np.log, "log10": np.log10, "sqrt": np.sqrt, "abs": np.abs, "sign": np.sign}


def evaluate(node: Node, env: Mapping[str, Any], memo: dict[int, Any] | None = None) -> Any:
    """The value of ``node`` with numpy broadcasting over the arrays in ``env``; ``memo`` shares work."""
    memo = {} if memo is None else memo
    hit = memo.get(id(node))
    if hit is not None:
        return hit
    k = node.kind
    if k == "num":
        out: Any = node.value
    elif k == "var":
        out = env[node.value]
    else:
        a = [evaluate(x, env, memo) for x in node.args]
        if k == "+":
            out = a[0] + a[1]
        elif k == "-":
            out = a[0] - a[1]
        elif k == "*":
            out = a[0] * a[1]
        elif k == "/":
            out = a[0] / a[1]
        elif k == "**":
            out = np.power(a[0], a[1])
        elif k == "neg":
            out = -a[0]
        elif k == "select":
            out = np.where(a[0] <= a[1], a[2], a[3])
        else:
            out = _UNARY[k](a[0])
    memo[id(node)] = out
    return out


def depends(node: Node, name: str, cache: dict[int, bool] | None = None) -> bool:
    """Whether ``node`` contains the variable ``name``."""
    cache = {} if cache is None else cache
    if id(node) not in cache:
        if node.kind == "var":
            cache[id(node)] = node.value == name
        else:
            cache[id(node)] = any(depends(a, name, cache) for a in node.args)
    return cache[id(node)]


def diff(node: Node, name: str, memo: dict[int, Node] | None = None) -> Node:
    """∂node/∂name as a new tree (exact symbolic derivative); ``memo`` belongs to this one ``name``."""
    memo = {} if memo is None else memo
    if id(node) in memo:
        return memo[id(node)]
    dep: dict[int, bool] = {}
    k = node.kind
    if not depends(node, name, dep):
        out = ZERO
    elif k == "var":
        out = ONE
    elif k in ("+", "-"):
        da, db = (diff(a, name, memo) for a in node.args)
        out = add(da, db) if k == "+" else sub(da, db)
    elif k == "*":
        a, b = node.args
        out = add(mul(diff(a, name, memo), b), mul(a, diff(b, name, memo)))
    elif k == "/":
        a, b = node.args
        out = sub(div(diff(a, name, memo), b), div(mul(a, diff(b, name, memo)), power(b, num(2.0))))
    elif k == "**":
        a, b = node.args
        da, db = diff(a, name, memo), diff(b, name, memo)
        # b·a^(b−1)·a' + a^b·log(a)·b'; each term vanishes when its factor does not depend on the variable
        out = add(
            mul(mul(b, power(a, sub(b, ONE))), da),
            mul(mul(node, call("log", a)), db) if db is not ZERO else ZERO,
        )
    elif k == "neg":
        out = neg(diff(node.args[0], name, memo))
    elif k == "select":
        a, b, yes, no = node.args
        out = select(a, b, diff(yes, name, memo), diff(no, name, memo))
    else:
        (a,) = node.args
        da = diff(a, name, memo)
        outer = {
            "exp": lambda: node,
            "log": lambda: div(ONE, a),
            "log10": lambda: div(ONE, mul(a, num(math.log(10.0)))),
            "sqrt": lambda: div(ONE, mul(num(2.0), node)),
            "abs": lambda: call("sign", a),
            "sign": lambda: ZERO,
        }[k]()
        out = mul(outer, da)
    memo[id(node)] = out
    return out


def show(node: Node) -> str:
    """The tree as text (fully parenthesised)."""
    k = node.kind
    if k == "num":
        return repr(node.value)
    if k == "var":
        return node.value
    if k == "neg":
        return f"(-{show(node.args[0])})"
    if k in _BINARY.values():
        return f"({show(node.args[0])} {k} {show(node.args[1])})"
    if k == "select":
        a, b, yes, no = (show(x) for x in node.args)
        return f"({yes} if {a} <= {b} else {no})"
    return f"{k}({', '.join(show(a) for a in node.args)})"


def names_in(node: Node) -> set[str]:
    """The variables a tree uses."""
    if node.kind == "var":
        return {node.value}
    return set().union(*(names_in(a) for a in node.args)) if node.args else set()
