"""Shared builders of the launcher, SLURM, WSD and component tests (a helper module: test modules import it,
never each other): tiny demo sweeps written to disk, sweeps that build tiny components, and the pollers that
wait for runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from florenz_scaling.launch.status import format_status, sweep_status
from florenz_scaling.plan import PlannedRun, make_plan, write_plan
from florenz_scaling.spec import SweepSpec, from_dict, load_sweep

REPO = Path(__file__).resolve().parents[1]
# The run body of launcher tests: sleeps $FLORENZ_SLEEP_S, writes DONE (tests/florenz_doubles.py).
TRIVIAL = "florenz_doubles:sleep_run"
# The base sweep of the launcher, plan and identity tests (the demo as it was; sweeps/demo.yaml moves on).
TINY_DEMO = REPO / "tests" / "data" / "sweeps" / "tiny_demo.yaml"
# The launcher tests' sweep: that demo shrunk to 2 sizes × 2 step counts, two local slots, no components.
SMALL = ["grid.steps=[4,8]", "sizes=[T-0.2M,T-0.5M]", "launch.array_parallelism=2", "components=null"]


def tiny_sweep(
    out: Path, overrides: Sequence[str] = (), sweep: Path = TINY_DEMO
) -> tuple[SweepSpec, list[PlannedRun]]:
    """``sweep`` with ``overrides``, planned and written to ``out`` (sweep.yaml, plan.csv)."""
    spec = load_sweep(sweep, list(overrides))
    plan = make_plan(spec)
    write_plan(spec, plan, out)
    return spec, plan


def components_sweep(
    sizes: list[str], components: dict[str, Any], data: dict[str, Any] | None = None
) -> SweepSpec:
    """A 4-step grid over ``sizes`` whose tiny components are built with ``components`` (a fast recipe)."""
    return from_dict(
        SweepSpec,
        {
            "name": "comp",
            "sizes": sizes,
            "grid": {"steps": [4], "global_batch": 4},
            "train": {"micro_batch": 4, "threads": 1},
            "data": {"heldout_per_pair": 4, **(data or {})},
            "components": components,
        },
    )


def local_run_args(sweep: str, out: Path, overrides: Iterable[str] = ()) -> list[str]:
    """The CLI's ``run sweeps/<sweep> --out OUT`` on the local executor, polled every second, ``-o`` each
    override: the README's main job, for the end-to-end tests."""
    args = ["run", str(REPO / "sweeps" / sweep), "--out", str(out), "--executor", "local", "--poll", "1"]
    for o in overrides:
        args += ["-o", o]
    return args


def wait_runs(out: Path, jobs: Iterable[Any] = (), timeout: float = 60.0, every: float = 0.3) -> list:
    """Poll the sweep's status until no run is queued or running; returns the status rows. ``jobs``: local
    jobs to poll meanwhile (polling reaps their controller processes)."""
    jobs = list(jobs)
    deadline = time.time() + timeout
    while time.time() < deadline:
        for j in jobs:
            j.done()
        rows = sweep_status(out)
        if not any(r.state in ("queued", "running") for r in rows):
            return rows
        time.sleep(every)
    raise AssertionError("runs still live after the timeout:\n" + format_status(sweep_status(out)))


def until(cond: Callable[[], object], what: str, timeout: float = 30.0, every: float = 0.2) -> None:
    """Poll ``cond`` until it is true; fails naming ``what`` after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(every)
