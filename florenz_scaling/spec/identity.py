"""What a run's identity is: the spec values that differ from their defaults, recursively.

One rule for every field of every section, so a field added with a default changes no existing id and no
field has to remember an exception. A field can only say *how* it enters the identity, where it is declared,
through its dataclass metadata:

- ``metadata=analysis()``: the field is an analysis setting (how results are named, grouped, reported);
  it never enters the identity, so changing it retrains nothing.
- ``metadata=identity_by(fn)``: the field enters as ``fn(value)``, e.g. reporting groups enter as the set
  of pairs they hold out (which pairs are evaluated determines the run; how they are averaged does not).

Everything else enters as its value, compared with its default after the same mapping; a nested frozen
dataclass enters as its own identity (its non-default fields), so a section left at its defaults adds
nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import weakref
from collections.abc import Callable
from typing import Any

IDENTITY = "florenz_identity"  # the metadata key
_ANALYSIS = object()  # marks a field outside every identity


def analysis() -> dict[str, Any]:
    """Field metadata of an analysis setting: outside the identity of whatever holds it."""
    return {IDENTITY: _ANALYSIS}


def identity_by(fn: Callable[[Any], Any]) -> dict[str, Any]:
    """Field metadata of a field that enters the identity as ``fn(value)`` (a JSON-able value)."""
    return {IDENTITY: fn}


def identity(spec: Any) -> dict[str, Any]:
    """The fields of the dataclass ``spec`` that differ from their defaults, as plain JSON-able values.

    A field without a default is always part of it (there is nothing to differ from).
    """
    hit = _CACHE.get(id(spec))
    if hit is not None and hit[0]() is spec:
        return hit[1]
    out: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        how = f.metadata.get(IDENTITY)
        if how is _ANALYSIS:
            continue
        value = _plain(how(getattr(spec, f.name)) if how else getattr(spec, f.name))
        default = _default(f)
        if default is not dataclasses.MISSING and value == _plain(how(default) if how else default):
            continue
        out[f.name] = value
    if len(_CACHE) > 256:
        _CACHE.clear()
    _CACHE[id(spec)] = (weakref.ref(spec), out)
    return out


def digest(spec: Any, length: int = 10) -> str:
    """The first ``length`` hex digits of the SHA-1 of ``identity(spec)`` as sorted JSON."""
    text = json.dumps(identity(spec), sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:length]


# A sweep's runs share their train and data sections: their identities are computed once (by object, since
# specs holding dicts are unhashable), which keeps planning thousands of candidate runs fast.
_CACHE: dict[int, tuple[weakref.ref, dict[str, Any]]] = {}


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _plain(value: Any) -> Any:
    """JSON's view of a value: nested dataclasses by their identity, tuples as lists, dict keys as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return identity(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def held_out_pairs(groups: dict[str, Any]) -> list[tuple[str, str]]:
    """The distinct (task, language) pairs of reporting groups, sorted: what a run is evaluated on."""
    return sorted({(str(p[0]), str(p[1])) for pairs in groups.values() for p in pairs})
