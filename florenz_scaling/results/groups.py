"""Reporting groups: the paper's reading order, and the sweep's current groups applied at collect time.

A record carries the group its writer reported it under, but groups are an analysis setting (they are not
part of a run's identity: ``spec.identity``), so the collector regroups every record by the sweep's
``data.groups`` as ``sweep.yaml`` holds them now: regrouping a sweep needs a new collect, never a new run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TypeVar

from florenz_scaling.files import SweepDir

# The paper's order (Fig. 3, Tables 2–3): generalisation first.
GROUP_ORDER = ("UC", "ST", "SC")

Pair = tuple[str, str]
Groups = Mapping[str, Iterable[Pair]]
R = TypeVar("R")  # LossRecord or MetricRecord: any frozen record with task, lang and group fields


def group_order(groups: Iterable[str]) -> list[str]:
    """The distinct groups given, in the paper's order; unknown ones after, alphabetically; "" dropped."""
    present = {g for g in groups if isinstance(g, str) and g}
    return [g for g in GROUP_ORDER if g in present] + sorted(present - set(GROUP_ORDER))


def sweep_groups(sweep_dir: str | Path) -> dict[str, tuple[Pair, ...]] | None:
    """The reporting groups in the sweep's ``sweep.yaml`` now (its default groups when the file names none);
    None when the directory has no sweep.yaml, so records keep the groups they were written under."""
    import yaml

    from florenz_scaling.spec.sections import DataSpec

    path = SweepDir(sweep_dir).sweep_yaml
    if not path.is_file():
        return None
    spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    # Read as written rather than through load_sweep: an older sweep.yaml whose other fields today's
    # checks refuse still has groups to collect by.
    groups = (spec.get("data") or {}).get("groups") if isinstance(spec, dict) else None
    if groups is None:
        return dict(DataSpec().groups)
    return {str(g): tuple((str(p[0]), str(p[1])) for p in pairs) for g, pairs in groups.items()}


def regroup(records: Iterable[R], groups: Groups | None) -> list[R]:
    """``records`` under ``groups``: a pair's record once per group that lists it, under "" when none does
    (a training pair no group lists); records without a pair (training loss) unchanged.

    The copies a writer made of one measurement, one per group of its day, count once. ``groups`` None:
    the records as written.
    """
    if groups is None:
        return list(records)
    of: dict[Pair, list[str]] = {}
    for g, pairs in groups.items():
        for task, lang in pairs:
            of.setdefault((task, lang), []).append(g)
    seen: set[object] = set()
    out: list[R] = []
    for r in records:
        if not r.task:  # type: ignore[attr-defined]
            out.append(r)
            continue
        measurement = dataclasses.replace(r, group="")  # type: ignore[type-var]
        if measurement in seen:
            continue
        seen.add(measurement)
        out += [dataclasses.replace(r, group=g) for g in of.get((r.task, r.lang), [""])]  # type: ignore[attr-defined,type-var]
    return out
