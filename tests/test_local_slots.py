"""Local slots take the longest runs first, each to the slot with the least compute so far, so that no slot
is left running one large run alone at the end (the demo's T-3.7M × 1,000 steps used to start sixth)."""

from __future__ import annotations

from pathlib import Path

from tiny_sweeps import TINY_DEMO

from florenz_scaling.launch.submit import local_slots
from florenz_scaling.plan import make_plan
from florenz_scaling.spec import load_sweep

REPO = Path(__file__).resolve().parents[1]


def test_the_demo_slots_start_with_their_largest_runs_and_carry_equal_compute() -> None:
    spec = load_sweep(TINY_DEMO)
    runs = make_plan(spec)
    slots = local_slots(spec, runs)
    assert len(slots) == 2 and sorted(r.run_id for s in slots for r in s) == sorted(r.run_id for r in runs)
    largest = max(runs, key=lambda r: r.added_gmacs)
    assert slots[0][0].run_id == largest.run_id
    for slot in slots:
        costs = [r.added_gmacs for r in slot]
        assert costs == sorted(costs, reverse=True)
    loads = [sum(r.added_gmacs for r in s) for s in slots]
    assert max(loads) / min(loads) < 1.05, loads
    round_robin = [sum(r.added_gmacs for r in runs[i::2]) for i in range(2)]
    assert max(loads) < max(round_robin)
