"""Expand a sweep into runs: a sizes × steps grid or compute budgets, plus extra runs.

Each run gets a stable id (hash of its resolved spec), seen samples S, compute C = S·F·(1 + P_t/P) in GMACs
(the paper's convention, §4) and an estimated cost in GPU-hours. No torch: F comes from the size registry.

This module owns ``plan.csv``: ``write_plan`` writes it and ``read_plan`` is the one way every later stage
(launch status, collect, report) reads it back, so its columns are defined in one place (``PLAN_COLUMNS``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from florenz_scaling.files import SweepDir, write_atomic
from florenz_scaling.spec import RunSpec, SpecError, SweepSpec, dump_yaml
from florenz_scaling.spec.old_runs import link_old_runs
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
        """C = S·F·(1 + P_t/P) in GMACs: the compute of the (N, S) point the run measures."""
        return compute_gmacs(self.seen_samples, self.fwd_gmacs, self.params, self.trainable_params)

    @property
    def role(self) -> str:
        """``run`` (from scratch to its end), ``trunk`` (a WSD trunk segment) or ``branch`` (a cooldown)."""
        return "trunk" if self.run.trunk else "branch" if self.run.start_from is not None else "run"

    @property
    def added_gmacs(self) -> float:
        """The compute this run spends: only the samples it adds to the checkpoint it starts from."""
        added = (self.run.steps - self.run.start_step) * self.run.global_batch
        return compute_gmacs(added, self.fwd_gmacs, self.params, self.trainable_params)


def est_gpu_hours(compute: float, fwd_gmacs: float, params: int, trainable: int, spec: SweepSpec) -> float:
    """Training FLOPs ≈ 2·S·F·(1 + 2·P_t/P) (forward, plus a backward of about twice the forward where weights
    train), divided by peak × utilisation. ``compute`` is C in GMACs, from which S·F is recovered."""
    sf = compute / (1 + trainable / params)
    flops = 2 * sf * 1e9 * (1 + 2 * trainable / params)
    return flops / (spec.cost.peak_tflops * 1e12 * spec.cost.utilisation) / 3600


def _run(spec: SweepSpec, size: str, steps: int, global_batch: int, largest: bool, **wsd: Any) -> RunSpec:
    generate = spec.generate
    if not largest and generate.primary_samples:  # the larger sample is decoded at each size's largest run
        generate = dataclasses.replace(generate, primary_samples=0)
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
        generate=generate,
        **wsd,
    )


def _planned(
    spec: SweepSpec,
    size_name: str,
    steps: int,
    gb: int,
    budget: float | None = None,
    largest: int = 0,
    **wsd: Any,
) -> PlannedRun:
    """A run of ``steps``; ``largest`` is the most steps any run of its size takes in the sweep."""
    size = get_size(size_name)
    return PlannedRun(
        _run(spec, size_name, steps, gb, steps >= largest, **wsd),
        size,
        size.params,
        size.trainable_params,
        size.fwd_gmacs,
        budget,
    )


def branch_point(steps: int, decay_fraction: float) -> int:
    """The step a WSD run of ``steps`` steps starts decaying at: S·(1 − decay fraction), in whole steps."""
    return steps - max(1, round(decay_fraction * steps))


def wsd_runs(
    spec: SweepSpec, cells: list[tuple[str, int, int, float | None]], largest: dict[str, int]
) -> list[PlannedRun]:
    """Per (size, batch): a trunk at constant lr, cut into segments that each end at a branch point (so each
    segment's final checkpoint is where branches start), and per budget a branch that loads its segment's
    checkpoint and decays to the budget. Segment k continues segment k−1: a chain of runs, one job each."""
    by_size: dict[tuple[str, int], list[tuple[int, float | None]]] = {}
    for size, steps, gb, budget in cells:
        by_size.setdefault((size, gb), []).append((steps, budget))
    out: list[PlannedRun] = []
    for (size, gb), budgets in by_size.items():
        points = {steps: branch_point(steps, spec.train.decay_fraction) for steps, _ in budgets}
        for steps, b in points.items():
            if b < max(1, spec.train.warmup_steps):
                raise SpecError(
                    "train.decay_fraction",
                    f"the {size} branch to {steps} steps would start decaying at step {b}, before the "
                    f"warm-up of {spec.train.warmup_steps} steps is over",
                    "raise the smallest budget, or lower train.warmup_steps or train.decay_fraction",
                )
        segment: dict[int, PlannedRun] = {}
        prev: PlannedRun | None = None
        for b in sorted(set(points.values())):
            prev = _planned(
                spec,
                size,
                b,
                gb,
                largest=largest[size],
                start_from=prev.run_id if prev else None,
                start_step=prev.run.steps if prev else 0,
                trunk=True,
            )
            segment[b] = prev
            out.append(prev)
        for steps, budget in budgets:
            b = points[steps]
            out.append(
                _planned(
                    spec, size, steps, gb, budget, largest[size], start_from=segment[b].run_id, start_step=b
                )
            )
    return out


def make_plan(spec: SweepSpec) -> list[PlannedRun]:
    """All runs of a sweep, duplicates (same run id) merged, ordered by size then seen samples.

    With ``train.schedule: wsd`` each size's grid (or budget) points become a trunk and branches
    (``wsd_runs``); extra runs stay runs of their own.
    """
    cells: list[tuple[str, int, int, float | None]] = []  # (size, steps, global batch, budget)
    if spec.grid:
        gb = spec.grid.global_batch
        steps_list = spec.grid.steps or tuple(max(1, round(s / gb)) for s in spec.grid.seen_samples)
        cells += [(size, steps, gb, None) for size in spec.sizes for steps in steps_list]
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
                cells.append((name, steps, gb, c))
    largest: dict[str, int] = {}
    for size, steps in [(c[0], c[1]) for c in cells] + [(e.size, e.steps) for e in spec.extra_runs]:
        largest[size] = max(steps, largest.get(size, 0))
    if spec.train.schedule == "wsd":
        runs = wsd_runs(spec, cells, largest)
    else:
        runs = [_planned(spec, size, steps, gb, budget, largest[size]) for size, steps, gb, budget in cells]
    base = spec.grid or spec.budget
    for extra in spec.extra_runs:
        gb = extra.global_batch or (base.global_batch if base else 1024)
        runs.append(_planned(spec, extra.size, extra.steps, gb, largest=largest[extra.size]))
    merged: dict[str, PlannedRun] = {}
    for r in runs:
        merged.setdefault(r.run_id, r)
    order = {name: i for i, name in enumerate(spec.sizes)}
    # Within a size: by seen samples, a trunk segment before the branch that starts where it ends.
    return sorted(
        merged.values(), key=lambda r: (r.params, order.get(r.run.size, 0), r.seen_samples, r.role != "trunk")
    )


def depths(runs: list[PlannedRun]) -> dict[str, int]:
    """run_id -> how many of ``runs`` must finish before it can start (its start run, that one's, ...)."""
    by_id, out = {r.run_id: r for r in runs}, {}

    def depth(r: PlannedRun) -> int:
        if r.run_id not in out:
            parent = by_id.get(r.run.start_from or "")
            out[r.run_id] = 0 if parent is None else depth(parent) + 1
        return out[r.run_id]

    for r in runs:
        depth(r)
    return out


def chains(runs: list[PlannedRun]) -> list[list[PlannedRun]]:
    """``runs`` joined by ``start_from`` (a WSD trunk's segments with their branches; any other run alone),
    each chain in an order that puts every run after the one it starts from, chains in plan order."""
    by_id, level = {r.run_id: r for r in runs}, depths(runs)

    def root(r: PlannedRun) -> str:
        while r.run.start_from in by_id:
            r = by_id[r.run.start_from]
        return r.run_id

    groups: dict[str, list[PlannedRun]] = {}
    for r in runs:
        groups.setdefault(root(r), []).append(r)
    return [sorted(g, key=lambda r: level[r.run_id]) for g in groups.values()]


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
    # WSD sweeps (a cosine run: cosine, run, "", 0, and added = compute_gmacs): the run whose final checkpoint
    # it starts from, at which step, and the compute it adds to it (what it costs; est_gpu_hours is of it).
    "schedule",
    "role",
    "branch_of",
    "start_step",
    "added_gmacs",
)


def plan_rows(spec: SweepSpec, plan: list[PlannedRun]) -> list[dict[str, object]]:
    """One dict per run with the ``PLAN_COLUMNS`` values (numbers as numbers): the rows of ``plan.csv``."""
    rows = []
    for r in plan:
        c, added = r.compute_gmacs, r.added_gmacs
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
                "est_gpu_hours": est_gpu_hours(added, r.fwd_gmacs, r.params, r.trainable_params, spec),
                "schedule": r.run.train.schedule,
                "role": r.role,
                "branch_of": r.run.start_from or "",
                "start_step": r.run.start_step,
                "added_gmacs": added,
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
    """A human-readable table of the plan with totals (a WSD plan: next to the equivalent cosine grid's)."""
    wsd = any(r.role != "run" for r in plan)
    head = (
        f"{'run_id':32s} {'size':8s} {'P':>9s} {'P_t':>9s} {'F GMACs':>10s} {'steps':>7s} {'batch':>6s} "
        f"{'S':>10s} {'C GMACs':>11s} {'GPU-h':>9s}"
    ) + (f" {'role':6s} {'from':>6s} branch_of" if wsd else "")
    lines = [f"sweep {spec.name}: {len(plan)} runs", head, "-" * len(head)]
    total_c = total_h = cosine_c = cosine_h = 0.0
    for r, row in zip(plan, plan_rows(spec, plan), strict=True):
        total_c += row["added_gmacs"]  # type: ignore[operator]
        total_h += row["est_gpu_hours"]  # type: ignore[operator]
        if r.role != "trunk":  # the cosine grid trains every measured point from scratch
            cosine_c += r.compute_gmacs
            cosine_h += est_gpu_hours(r.compute_gmacs, r.fwd_gmacs, r.params, r.trainable_params, spec)
        line = (
            f"{row['run_id']:32s} {row['size']:8s} {_si(row['params']):>9s} "
            f"{_si(row['trainable_params']):>9s} {row['fwd_gmacs']:10.4g} {row['steps']:7d} "
            f"{row['global_batch']:6d} {_si(row['seen_samples']):>10s} "
            f"{row['compute_gmacs']:11.4g} {row['est_gpu_hours']:9.3g}"
        )
        if wsd:
            line += f" {r.role:6s} {r.run.start_step:6d} {r.run.start_from or '-'}"
        lines.append(line)
    lines.append(
        f"total compute {total_c:.4g} GMACs, estimated {total_h:.4g} GPU-hours on "
        f"{spec.cost.gpu} at {spec.cost.utilisation:.0%} of {spec.cost.peak_tflops:g} TFLOP/s"
    )
    if wsd:
        lines.append(
            f"WSD: trunk segments and branches cost {total_c:.4g} GMACs ({total_h:.4g} GPU-hours; a branch "
            f"counts the samples it adds); the equivalent cosine grid costs {cosine_c:.4g} GMACs "
            f"({cosine_h:.4g} GPU-hours): WSD/cosine = {total_c / cosine_c:.3f}"
        )
    return "\n".join(lines)


def compute_ratio(plan: list[PlannedRun]) -> float:
    """Compute a WSD plan spends over that of the equivalent cosine grid (each point trained from scratch)."""
    return sum(r.added_gmacs for r in plan) / sum(r.compute_gmacs for r in plan if r.role != "trunk")


def _si(x: object) -> str:
    v = float(x)  # type: ignore[arg-type]
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= div:
            return f"{v / div:.4g}{unit}"
    return f"{v:g}"


def write_plan(spec: SweepSpec, plan: list[PlannedRun], out: str | Path) -> None:
    """Write ``plan.csv`` and the resolved ``sweep.yaml`` into a sweep directory (and link the runs an
    earlier version made under their old ids to their ids now: ``spec.old_runs``)."""
    sd = SweepDir(out)
    sd.root.mkdir(parents=True, exist_ok=True)
    link_old_runs(sd.runs, [r.run for r in plan])
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
