"""Candidate runs: where they come from (a sweep's extended grid, a POOL.yaml or a POOL.csv) and their cost.

A sweep's default pool is its grid *extended by its sizes and budgets*: every size the sweep names (``sizes``
and ``extra_runs``) at every step count it names anywhere (grid steps or seen samples, the step counts its
compute budgets give each size, extra runs). Each candidate's cost is the planner's estimate
(``plan.est_gpu_hours``), so it is in GPU-hours, and N = P, D = S, C = compute in GMACs, as ``fit`` reads
a sweep's table.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from florenz_scaling.design.model import DesignError
from florenz_scaling.plan import PlannedRun, est_gpu_hours, make_plan
from florenz_scaling.spec import ExtraRun, SweepSpec

COST_COLUMNS = ("cost", "gpu_hours", "est_gpu_hours")


@dataclass(frozen=True)
class Candidate:
    """One run that could be bought: its law inputs, its cost and, for a sweep, the size and steps to plan."""

    name: str
    N: float
    D: float
    C: float
    cost: float
    size: str | None = None
    steps: int | None = None
    global_batch: int | None = None

    def inputs(self, names: tuple[str, ...]) -> list[float]:
        """Its values of the law inputs ``names`` (N, D, C)."""
        return [float(getattr(self, n)) for n in names]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (JSON)."""
        return dataclasses.asdict(self)


def _planned_candidate(spec: SweepSpec, r: PlannedRun) -> Candidate:
    c = r.compute_gmacs
    return Candidate(
        name=f"{r.run.size}@{r.run.steps}",
        N=float(r.params),
        D=float(r.seen_samples),
        C=c,
        cost=est_gpu_hours(c, r.fwd_gmacs, r.params, r.trainable_params, spec),
        size=r.run.size,
        steps=r.run.steps,
        global_batch=r.run.global_batch,
    )


def plan_runs(spec: SweepSpec, runs: list[tuple[str, int, int | None]]) -> list[Candidate]:
    """Plan ``(size, steps, global_batch)`` runs with the sweep's settings; one candidate each, in order."""
    if not runs:
        return []
    only = dataclasses.replace(
        spec, sizes=(), grid=None, budget=None, extra_runs=tuple(ExtraRun(s, st, gb) for s, st, gb in runs)
    )
    by_key = {(r.run.size, r.run.steps): r for r in make_plan(only)}
    return [_planned_candidate(spec, by_key[(s, st)]) for s, st, _ in runs if (s, st) in by_key]


def sweep_pool(spec: SweepSpec) -> list[Candidate]:
    """The sweep's grid extended by its sizes and budgets (see the module docstring), cheapest first."""
    plan = make_plan(spec)
    sizes = list(dict.fromkeys([*spec.sizes, *(r.size for r in spec.extra_runs)]))
    steps = sorted({r.run.steps for r in plan})
    base = spec.grid or spec.budget
    gb = base.global_batch if base else None
    pool = plan_runs(spec, [(s, st, gb) for s in sizes for st in steps])
    return sorted(pool, key=lambda c: (c.cost, c.N, c.D))


def _read_csv_pool(path: Path, spec: SweepSpec | None) -> list[Candidate]:
    import pandas as pd

    from florenz_scaling.fit.io import ALIASES

    t = pd.read_csv(path)
    t = t.rename(columns={k: v for k, v in ALIASES.items() if k in t.columns and v not in t.columns})
    if spec is not None and {"size", "steps"} <= set(t.columns):
        gb = t["global_batch"] if "global_batch" in t.columns else [None] * len(t)
        return plan_runs(
            spec,
            [
                (str(s), int(st), None if g is None or pd.isna(g) else int(g))
                for s, st, g in zip(t["size"], t["steps"], gb, strict=True)
            ],
        )
    if not {"N", "D"} <= set(t.columns) and "C" not in t.columns:
        raise DesignError(
            f"{path}: a pool needs columns N and D (or C), or size and steps with a sweep; "
            f"has {', '.join(t.columns)}"
        )
    if "C" not in t.columns:
        t["C"] = 6.0 * t["N"] * t["D"]
    cost_col = next((c for c in COST_COLUMNS if c in t.columns), "C")
    out = []
    for i, row in t.reset_index(drop=True).iterrows():
        name = str(row["run_id"]) if "run_id" in t.columns else f"row{i}"
        out.append(
            Candidate(
                name,
                float(row.get("N", math.nan)),
                float(row.get("D", math.nan)),
                float(row["C"]),
                float(row[cost_col]),
            )
        )
    return out


def _read_yaml_pool(path: Path, spec: SweepSpec | None) -> list[Candidate]:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "sizes" in data and "steps" in data:
        runs = [(str(s), int(st), None) for s in data["sizes"] for st in data["steps"]]
    else:
        rows = data.get("candidates") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(
            isinstance(r, dict) and {"size", "steps"} <= set(r) for r in rows
        ):
            raise DesignError(
                f"{path}: a YAML pool is `candidates: [{{size, steps}}, ...]` or "
                "`{sizes: [...], steps: [...]}`"
            )
        runs = [(str(r["size"]), int(r["steps"]), r.get("global_batch")) for r in rows]
    if spec is None:
        raise DesignError(f"{path}: sizes and steps need a sweep to plan their cost (give a sweep directory)")
    return plan_runs(spec, runs)


def read_pool(path: str | Path, spec: SweepSpec | None = None) -> list[Candidate]:
    """A POOL.yaml (sizes × steps or a list of {size, steps}: planned with ``spec``) or a POOL.csv (N, D, C
    with the ``fit`` aliases and a ``cost`` / ``gpu_hours`` column, else cost = C)."""
    p = Path(path)
    if not p.exists():
        raise DesignError(f"pool {p} not found")
    pool = _read_yaml_pool(p, spec) if p.suffix in (".yaml", ".yml") else _read_csv_pool(p, spec)
    bad = [c.name for c in pool if not (c.cost > 0 and math.isfinite(c.cost))]
    if bad:
        raise DesignError(f"{p}: candidates need a positive cost: {', '.join(bad[:5])}")
    return pool


def unmeasured(pool: list[Candidate], points: Any, inputs: tuple[str, ...]) -> list[Candidate]:
    """The candidates whose inputs no measured point already has (relative tolerance 1e-6)."""
    seen = {tuple(round(math.log(float(v)), 6) for v in row) for row in points[list(inputs)].to_numpy()}
    return [c for c in pool if tuple(round(math.log(v), 6) for v in c.inputs(inputs)) not in seen]
