"""Planning a 10,000-run sweep: spec load and validation, run ids, P/P_t/F/C per run, plan.csv and sweep.yaml.

The sweep is the paper's sweep YAML with its grid widened to every registered size × enough step counts
to make 10,000 runs. The baseline, timed in the same process, is the least any planner must do: build the
10,000 frozen run specs and their ids. The ratio says how much the planner adds on top of that floor.

    python benchmarks/plan_scale.py [--runs 10000]

Target (issue 3): the whole plan under 2 s on this 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its numbers; 1 when the plan lost runs on the way to plan.csv."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10_000)
    args = ap.parse_args(argv)

    from florenz_scaling.plan import _run, make_plan, read_plan, write_plan
    from florenz_scaling.spec import load_sweep
    from florenz_scaling.spec.sizes import SIZES

    sizes = sorted(SIZES)
    n_steps = -(-args.runs // len(sizes))
    steps = list(range(100, 100 + 10 * n_steps, 10))
    overrides = [f"sizes=[{', '.join(sizes)}]", f"grid.steps=[{', '.join(map(str, steps))}]", "extra_runs=[]"]

    t0 = time.perf_counter()
    spec = load_sweep(ROOT / "sweeps" / "florenz_paper.yaml", overrides)
    plan = make_plan(spec)
    with tempfile.TemporaryDirectory() as out:
        write_plan(spec, plan, Path(out))
        rows = len(read_plan(out))  # read back as every later stage reads it
    t_plan = time.perf_counter() - t0

    t0 = time.perf_counter()
    floor = [_run(spec, s, st, spec.grid.global_batch).run_id for s in sizes for st in steps]
    t_floor = time.perf_counter() - t0

    print(
        f"runs planned: {len(plan)} ({rows} rows in plan.csv), {len(sizes)} sizes x {len(steps)} step counts"
    )
    print(
        f"plan (load + validate + plan + write): {t_plan:.3f} s   target < 2 s: "
        f"{'OK' if t_plan < 2 else 'MISSED'}"
    )
    print(f"baseline (run specs and ids only):     {t_floor:.3f} s   ({len(floor)} ids)")
    print(f"ratio plan / baseline: {t_plan / t_floor:.2f}x")
    return 0 if len(plan) >= args.runs and rows == len(plan) else 1


if __name__ == "__main__":
    sys.exit(main())
