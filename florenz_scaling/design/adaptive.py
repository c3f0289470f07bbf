"""The loop of ``florenz-scaling run SWEEP --adaptive --budget GPU-h``.

    pilot design ─▶ launch ─▶ collect ─▶ fit ─▶ propose ─▶ launch ─▶ … until the budget is spent or the
    target's 95% interval is narrower than ``width``

``propose`` chooses by replay's ``adaptive`` criterion (``design.acquire``) for a law with a formula form
(chinchilla included), so the loop buys what the benchmarked strategy buys; the interval is then ± 1.96 sd
of the target's predictive variance in loss units (Fisher plus the fit's competing modes). For the OLS laws
it is the leave-one-out refits' (``design.ensemble``; the Fisher/delta method while too few succeed), in
log-loss units.

The pool is the sweep's grid extended by its sizes and budgets (``design.pool``). The pilot is the
cheapest-first set of candidates that ``check_design`` passes for the law: the cheapest design that can
identify it. Every round runs a sweep whose runs are exactly those bought so far (``extra_runs``, written
to ``OUT/design/round-NN.yaml``) through the ordinary pipeline, so a round resumes like any ``run``.

Each round appends one JSON line to ``OUT/design/rounds.jsonl``, for the report:
``{"round", "time", "law", "target", "estimate", "sd", "interval": [lo, hi], "width", "bought": [names],
"new": [names], "spent_gpu_h", "budget_gpu_h", "next": [names], "stop": reason | null}``
and the same fields go to the ledger as a ``round`` event (run_id ``_design``) through ``record``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from florenz_scaling.design.check import check_design
from florenz_scaling.design.model import DesignError, Target, law_inputs, parse_target
from florenz_scaling.design.pool import Candidate, sweep_pool
from florenz_scaling.design.propose import propose
from florenz_scaling.files import SweepDir
from florenz_scaling.spec import ExtraRun, SweepSpec, dump_yaml, load_sweep

ROUNDS_FILE = "rounds.jsonl"
Z95 = 1.959963984540054


def pilot_design(pool: list[Candidate], law: str) -> list[Candidate]:
    """The cheapest-first prefix of ``pool`` that ``check_design`` passes (the whole pool if none does)."""
    import pandas as pd

    order = sorted(pool, key=lambda c: c.cost)
    for k in range(1, len(order) + 1):
        pts = pd.DataFrame([c.to_dict() for c in order[:k]])
        if not check_design(pts, law):
            return order[:k]
    return order


def default_target(pool: list[Candidate], law: str) -> Target:
    """The loss at the pool's most expensive candidate: the corner the study most wants to predict."""
    top = max(pool, key=lambda c: c.cost)
    return Target(
        law, inputs={k: v for k, v in zip(law_inputs(law), top.inputs(law_inputs(law)), strict=True)}
    )


def round_spec(spec: SweepSpec, bought: list[Candidate]) -> SweepSpec:
    """The sweep whose runs are exactly ``bought``."""
    extra = tuple(ExtraRun(c.size, c.steps, c.global_batch) for c in bought)  # type: ignore[arg-type]
    return dataclasses.replace(spec, sizes=(), grid=None, budget=None, extra_runs=extra)


def _points(out: Path, group: str | None, pair: str | None, say: Callable[[str], None]) -> Any:
    from florenz_scaling.fit import load_points, select

    if pair:
        task, _, lang = pair.partition("/")
        return select(load_points(out, level="pair"), task=task, lang=lang)
    pts = load_points(out, level="group")
    groups = sorted(str(g) for g in pts["group"].unique())
    if group is None and len(groups) > 1:
        group = groups[0]
        say(f"adaptive: several groups ({', '.join(groups)}); designing for {group} (choose with --group)")
    return select(pts, group=group) if group else pts


def run_adaptive(
    sweep: str | Path,
    out: str | Path,
    *,
    budget: float,
    run_round: Callable[[Path], object],
    record: Callable[[dict[str, Any]], object] | None = None,
    overrides: list[str] | None = None,
    law: str | None = None,
    target: str | None = None,
    width: float | None = None,
    k: int = 2,
    group: str | None = None,
    pair: str | None = None,
    max_rounds: int = 50,
    say: TextIO | None = None,
) -> list[dict[str, Any]]:
    """Run rounds until the budget (GPU-hours) is spent or the target's interval is below ``width``.

    ``run_round(round_yaml)`` plans, launches, waits for, collects and fits one round's sweep (the ``run``
    pipeline); ``record(fields)`` appends the round to the ledger. Returns the rounds as written.
    """

    def log(msg: str) -> None:
        print(msg, file=say or sys.stdout, flush=True)

    spec = load_sweep(sweep, overrides or [])
    law = law or default_law(spec.fit.laws)
    pool = sweep_pool(spec)
    tgt = parse_target(target, law) if target else default_target(pool, law)
    bought = pilot_design(pool, law)
    if sum(c.cost for c in bought) > budget:
        raise DesignError(
            f"the pilot design ({len(bought)} runs) needs {sum(c.cost for c in bought):.4g} "
            f"GPU-h, more than the budget of {budget:g}"
        )
    design_dir = SweepDir(out).root / "design"
    design_dir.mkdir(parents=True, exist_ok=True)
    rounds: list[dict[str, Any]] = []
    new = list(bought)
    for r in range(max_rounds):
        path = design_dir / f"round-{r:02d}.yaml"
        dump_yaml(round_spec(spec, bought), path)
        log(f"adaptive: round {r}: {len(new)} new run(s) ({', '.join(c.name for c in new)})")
        run_round(path)
        spent = sum(c.cost for c in bought)
        prop = propose(_points(Path(out), group, pair, log), law, tgt, pool, k=k, budget=budget - spent)
        sd = math.sqrt(prop.var_now)
        stop = None
        if width is not None and 2 * Z95 * sd <= width:
            stop = f"target interval {2 * Z95 * sd:.4g} <= width {width:g}"
        elif not prop.chosen:
            stop = f"budget spent ({spent:.4g} of {budget:g} GPU-h: no candidate fits what is left)"
        elif r == max_rounds - 1:
            stop = f"{max_rounds} rounds"
        row = {
            "round": r,
            "time": time.time(),
            "law": law,
            "target": tgt.label,
            "estimate": prop.estimate,
            "sd": sd,
            "interval": [prop.estimate - Z95 * sd, prop.estimate + Z95 * sd],
            "width": 2 * Z95 * sd,
            "bought": [c.name for c in bought],
            "new": [c.name for c in new],
            "spent_gpu_h": spent,
            "budget_gpu_h": budget,
            "next": [] if stop else [c.name for c, _ in prop.chosen],
            "stop": stop,
        }
        rounds.append(row)
        with open(design_dir / ROUNDS_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        if record is not None:
            record(row)
        log(
            f"adaptive: {tgt.label} = {prop.estimate:.5g} ± {Z95 * sd:.3g} (95%), spent {spent:.4g} of "
            f"{budget:g} GPU-h" + (f"; stop: {stop}" if stop else "")
        )
        if stop:
            break
        new = [c for c, _ in prop.chosen]
        bought = bought + new
    return rounds


def default_law(laws: Any) -> str:
    """The law an adaptive loop steers by when none is named: the first of the sweep's laws with
    a compute-optimal allocation (a law of N and D, whose targets are the runs one would buy), else
    the first."""
    from florenz_scaling.fit import get_law

    return next((name for name in laws if get_law(name).has_allocation), laws[0])
