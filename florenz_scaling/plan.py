"""Expand a sweep into runs: a sizes × steps grid or compute budgets, plus extra runs.

Each run gets a stable id (hash of its resolved spec), seen samples S, compute C = S·F·(1 + P_t/P) in GMACs
(the paper's convention, §4) and an estimated cost in GPU-hours. No torch: F comes from the size registry.

This module owns ``plan.csv``: ``write_plan`` writes it and ``read_plan`` is the one way every later stage
(launch status, collect, report) reads it back, so its columns are defined in one place (``PLAN_COLUMNS``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from florenz_scaling.files import SweepDir, write_atomic
from florenz_scaling.spec import RunSpec, SweepSpec, dump_yaml
from florenz_scaling.spec.sizes import SizeConfig, compute_gmacs, get_size


@dataclass(frozen=True)
class PlannedRun:
    """One run of the plan: its resolved spec and the size facts its compute and cost are derived from."""

    run: RunSpec
    size: SizeConfig
    params: int
    trainable_params: int
    fwd_gmacs: float
    budget_gmacs: float | None = None  # the budget a compute-budget run was sized for

    @property
    def run_id(self) -> str:
        """The run's stable id (a hash of what it computes)."""
        return self.run.run_id

    @property
    def seen_samples(self) -> int:
        """S: training samples the run sees (steps × global batch)."""
        return self.run.seen_samples

    @property
    def compute_gmacs(self) -> float:
        """C = S·F·(1 + P_t/P) in GMACs."""
        return compute_gmacs(self.seen_samples, self.fwd_gmacs, self.params, self.trainable_params)


def est_gpu_hours(compute: float, fwd_gmacs: float, params: int, trainable: int, spec: SweepSpec) -> float:
    """Training FLOPs ≈ 2·S·F·(1 + 2·P_t/P) (forward, plus a backward of about twice the forward where weights
    train), divided by peak × utilisation. ``compute`` is C in GMACs, from which S·F is recovered."""
    sf = compute / (1 + trainable / params)
    flops = 2 * sf * 1e9 * (1 + 2 * trainable / params)
    return flops / (spec.cost.peak_tflops * 1e12 * spec.cost.utilisation) / 3600


def _run(spec: SweepSpec, size: str, steps: int, global_batch: int) -> RunSpec:
    return RunSpec(
        sweep=spec.name,
        size=size,
        steps=steps,
        global_batch=global_batch,
        train=spec.train,
        data=spec.data,
        wandb=spec.wandb,
        seed=spec.seed,
        pretrained=spec.pretrained.get(size),
    )


def _planned(spec: SweepSpec, size_name: str, steps: int, gb: int, budget: float | None = None) -> PlannedRun:
    size = get_size(size_name)
    return PlannedRun(
        _run(spec, size_name, steps, gb), size, size.params, size.trainable_params, size.fwd_gmacs, budget
    )


def make_plan(spec: SweepSpec) -> list[PlannedRun]:
    """All runs of a sweep, duplicates (same run id) merged, ordered by size then seen samples."""
    runs: list[PlannedRun] = []
    if spec.grid:
        gb = spec.grid.global_batch
        steps_list = spec.grid.steps or tuple(max(1, round(s / gb)) for s in spec.grid.seen_samples)
        runs += [_planned(spec, size, steps, gb) for size in spec.sizes for steps in steps_list]
    if spec.budget:
        gb = spec.budget.global_batch
        for c in spec.budget.compute_gmacs:
            for name in spec.sizes:
                size = get_size(name)
                per_sample = size.fwd_gmacs * (1 + size.trainable_params / size.params)
                steps = max(1, round(c / per_sample / gb))  # S = C / (F (1 + P_t/P)), whole steps
                if spec.budget.tokens_per_param is not None:
                    lo, hi = spec.budget.tokens_per_param
                    if not lo <= steps * gb * size.target_len / size.params <= hi:
                        continue
                runs.append(_planned(spec, name, steps, gb, budget=c))
    base = spec.grid or spec.budget
    for extra in spec.extra_runs:
        gb = extra.global_batch or (base.global_batch if base else 1024)
        runs.append(_planned(spec, extra.size, extra.steps, gb))
    merged: dict[str, PlannedRun] = {}
    for r in runs:
        merged.setdefault(r.run_id, r)
    order = {name: i for i, name in enumerate(spec.sizes)}
    return sorted(merged.values(), key=lambda r: (r.params, order.get(r.run.size, 0), r.seen_samples))


PLAN_COLUMNS = (
    "run_id",
    "size",
    "family",
    "params",
    "trainable_params",
    "fwd_gmacs",
    "steps",
    "global_batch",
    "seen_samples",
    "compute_gmacs",
    "budget_gmacs",
    "est_gpu_hours",
)


def plan_rows(spec: SweepSpec, plan: list[PlannedRun]) -> list[dict[str, object]]:
    """One dict per run with the ``PLAN_COLUMNS`` values (numbers as numbers): the rows of ``plan.csv``."""
    rows = []
    for r in plan:
        c = r.compute_gmacs
        rows.append(
            {
                "run_id": r.run_id,
                "size": r.run.size,
                "family": r.size.family,
                "params": r.params,
                "trainable_params": r.trainable_params,
                "fwd_gmacs": r.fwd_gmacs,
                "steps": r.run.steps,
                "global_batch": r.run.global_batch,
                "seen_samples": r.seen_samples,
                "compute_gmacs": c,
                "budget_gmacs": "" if r.budget_gmacs is None else r.budget_gmacs,
                "est_gpu_hours": est_gpu_hours(c, r.fwd_gmacs, r.params, r.trainable_params, spec),
            }
        )
    return rows


def plan_csv(spec: SweepSpec, plan: list[PlannedRun]) -> str:
    """The text of ``plan.csv``; floats are written with ``repr`` so they read back exactly."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PLAN_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in plan_rows(spec, plan):
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    return buf.getvalue()


def format_plan(spec: SweepSpec, plan: list[PlannedRun]) -> str:
    """A human-readable table of the plan with totals."""
    head = (
        f"{'run_id':32s} {'size':8s} {'P':>9s} {'P_t':>9s} {'F GMACs':>10s} {'steps':>7s} {'batch':>6s} "
        f"{'S':>10s} {'C GMACs':>11s} {'GPU-h':>9s}"
    )
    lines = [f"sweep {spec.name}: {len(plan)} runs", head, "-" * len(head)]
    total_c = total_h = 0.0
    for row in plan_rows(spec, plan):
        total_c += row["compute_gmacs"]  # type: ignore[operator]
        total_h += row["est_gpu_hours"]  # type: ignore[operator]
        lines.append(
            f"{row['run_id']:32s} {row['size']:8s} {_si(row['params']):>9s} "
            f"{_si(row['trainable_params']):>9s} {row['fwd_gmacs']:10.4g} {row['steps']:7d} "
            f"{row['global_batch']:6d} {_si(row['seen_samples']):>10s} "
            f"{row['compute_gmacs']:11.4g} {row['est_gpu_hours']:9.3g}"
        )
    lines.append(
        f"total compute {total_c:.4g} GMACs, estimated {total_h:.4g} GPU-hours on "
        f"{spec.cost.gpu} at {spec.cost.utilisation:.0%} of {spec.cost.peak_tflops:g} TFLOP/s"
    )
    return "\n".join(lines)


def _si(x: object) -> str:
    v = float(x)  # type: ignore[arg-type]
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= div:
            return f"{v / div:.4g}{unit}"
    return f"{v:g}"


def write_plan(spec: SweepSpec, plan: list[PlannedRun], out: str | Path) -> None:
    """Write ``plan.csv`` and the resolved ``sweep.yaml`` into a sweep directory."""
    sd = SweepDir(out)
    sd.root.mkdir(parents=True, exist_ok=True)
    dump_yaml(spec, sd.sweep_yaml)
    write_atomic(sd.plan_csv, plan_csv(spec, plan))


def read_plan(sweep_dir: str | Path) -> list[dict[str, str]]:
    """The rows of ``sweep_dir/plan.csv`` in file order, every value as the text written.

    Values stay text (the CSV's own type) so that each reader converts only the columns it uses, and a plan
    written by an older version (fewer or other columns) still reads. Raises ``FileNotFoundError`` when the
    sweep has no plan; callers that have a fallback check ``SweepDir(...).plan_csv.exists()`` first.
    """
    with open(SweepDir(sweep_dir).plan_csv, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
