"""Generic typed loading: YAML and plain dicts -> frozen dataclasses, dotted overrides, field-naming errors.

Knows nothing about sweeps: ``spec.sweep`` and ``spec.sections`` define the schema, this module turns text
into instances of it.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from florenz_scaling.files import write_atomic


class SpecError(ValueError):
    """A sweep specification is wrong; the message names the field and what would fix it."""

    def __init__(self, field_path: str, problem: str, fix: str = "") -> None:
        self.field_path = field_path
        msg = f"{field_path or '<root>'}: {problem}"
        if fix:
            msg += f" — fix: {fix}"
        super().__init__(msg)


def check(cond: bool, field_path: str, problem: str, fix: str = "") -> None:
    if not cond:
        raise SpecError(field_path, problem, fix)


def to_plain(obj: Any) -> Any:
    """Dataclasses/tuples -> dicts/lists, suitable for YAML and JSON."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path)
            except SpecError as e:
                errors.append(e)
        raise (
            errors[0] if len(errors) == 1 else SpecError(path, f"{value!r} matches none of {_type_name(tp)}")
        )
    if origin is Literal:
        check(value in args, path, f"{value!r} is not allowed", f"use one of {', '.join(map(str, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        check(
            isinstance(value, dict),
            path,
            f"expected a mapping, got {type(value).__name__}",
            f"write `{path.rsplit('.', 1)[-1]}:` followed by indented keys",
        )
        return from_dict(tp, value, path)
    if origin is tuple:
        check(isinstance(value, (list, tuple)), path, f"expected a list, got {value!r}", "write [a, b, ...]")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        check(len(value) == len(args), path, f"expected {len(args)} items, got {len(value)}")
        return tuple(_convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        check(isinstance(value, dict), path, f"expected a mapping, got {value!r}")
        return {str(k): _convert(args[1], v, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        check(isinstance(value, bool), path, f"expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        check(
            isinstance(value, int) and not isinstance(value, bool),
            path,
            f"expected an integer, got {value!r}",
            "write a whole number, e.g. 1024",
        )
        return value
    if tp is float:
        if isinstance(value, str):
            try:
                value = float(value)  # YAML reads 1e-4 (no dot) as a string
            except ValueError:
                pass
        check(
            isinstance(value, (int, float)) and not isinstance(value, bool),
            path,
            f"expected a number, got {value!r}",
            "write e.g. 1e-4 or 0.01",
        )
        # .inf, .nan and overflowing literals such as 1e400 would reach the trainer as non-finite numbers.
        check(math.isfinite(value), path, f"must be a finite number, got {value!r}", "write e.g. 1e-4")
        return float(value)
    if tp is str:
        check(isinstance(value, str), path, f"expected a string, got {value!r}")
        return value
    raise SpecError(path, f"unsupported type {_type_name(tp)}")


def from_dict(cls: type, data: dict[str, Any], path: str = "") -> Any:
    """Build dataclass ``cls`` from a plain dict; unknown keys and wrong types are ``SpecError``s."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{path}." if path else ""
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(fields)}"
            raise SpecError(f"{prefix}{key}", "unknown key", hint)
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], f"{prefix}{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SpecError(f"{prefix}{name}", "is required", f"add `{name}:` to the spec")
    try:
        return cls(**kwargs)
    except SpecError as e:
        if path and not e.field_path.startswith(path):
            raise SpecError(f"{prefix}{e.field_path}", str(e).split(": ", 1)[1]) from None
        raise


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.lr=2e-4`` -> (["train", "lr"], 2e-4). Values are parsed as YAML."""
    if "=" not in text:
        raise SpecError(text, "override has no '='", "write key.path=value, e.g. -o train.lr=2e-4")
    key, raw = text.split("=", 1)
    keys = key.strip().split(".")
    if not all(keys):
        raise SpecError(key, "empty key in override", "write key.path=value")
    return keys, parse_yaml(raw, key) if raw.strip() else ""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (copying it); typos surface as unknown keys at load."""
    out = copy.deepcopy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for i, k in enumerate(keys[:-1]):
            nxt = node.get(k)
            if nxt is None:
                nxt = node[k] = {}
            if not isinstance(nxt, dict):
                raise SpecError(".".join(keys[: i + 1]), "is not a mapping, cannot set a key inside it")
            node = nxt
        node[keys[-1]] = value
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """A ``yaml.SafeLoader`` refusing a key given twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise SpecError(
                    f"{key}",
                    f"duplicate key on line {line} (first given on line {seen[key]})",
                    "give each key once; YAML would silently keep only the last value",
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str = "<string>") -> Any:
    """Parse YAML safely (no Python objects), refusing duplicate keys; errors are ``SpecError``s."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise SpecError(source, f"is not valid YAML: {e}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; a missing file, invalid YAML, a duplicate key or a non-mapping is a
    ``SpecError``."""
    path = Path(path)
    if not path.exists():
        raise SpecError(str(path), "file does not exist", "check the path")
    data = parse_yaml(path.read_text(), str(path)) or {}
    if not isinstance(data, dict):
        raise SpecError(str(path), "top level must be a mapping")
    return data


def dump_yaml(obj: Any, path: str | Path) -> None:
    """Write a spec (dataclass) as YAML atomically."""
    write_atomic(path, yaml.safe_dump(to_plain(obj), sort_keys=False))
