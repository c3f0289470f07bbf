"""Submit a 1,000-run sweep of trivial jobs as one job array to the local SLURM cluster, and time ``status``.

    scripts/slurm-local start
    python benchmarks/launch_scale.py [--runs 1000] [--out DIR] [--parallelism 64]

Prints the launch time (plan, 1,000 run.yaml files, one sbatch --array), ``status`` while the array is in the
queue (one squeue call for all tasks), the time until every run is done, and ``status`` over the finished
sweep. Target: ``status`` under 5 s for 1,000 runs. Baseline in the same run: the time of one bare
``squeue`` call, which bounds what status can save.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# The jobs run the launcher tests' trivial body (tests/florenz_doubles.py), imported by each worker.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO / "tests"), os.environ.get("PYTHONPATH", "")) if p
)

from florenz_scaling.launch import format_status, launch, submissions, sweep_status  # noqa: E402
from florenz_scaling.plan import make_plan, write_plan  # noqa: E402
from florenz_scaling.spec import load_sweep  # noqa: E402


def timed(fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201 - a benchmark helper
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def main() -> int:
    """Run the benchmark and print its numbers."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--parallelism", type=int, default=64)
    ap.add_argument("--out", type=Path, default=None, help="sweep directory (default: a fresh temp dir)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the array to finish")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="launch-scale-"))
    os.environ.setdefault("FLORENZ_SLEEP_S", "0")
    steps = "[" + ",".join(str(s) for s in range(1, args.runs + 1)) + "]"
    spec = load_sweep(
        REPO / "sweeps" / "demo.yaml",
        [
            "name=launch-scale",
            "sizes=[T-0.2M]",
            f"grid.steps={steps}",
            f"launch.array_parallelism={args.parallelism}",
            "launch.resources.mem_gb=0.1",
            "launch.resources.timeout_min=10",
        ],
    )
    plan = make_plan(spec)
    assert len(plan) == args.runs
    write_plan(spec, plan, out)
    entry = "florenz_doubles:sleep_run"
    res, t_launch = timed(launch, spec, out, plan, executor="slurm", entry=entry)
    arrays = {j.split("_")[0] for _, j in res.submitted}
    print(f"launch: {len(res.submitted)} runs in {len(arrays)} array(s) in {t_launch:.2f} s ({out})")
    # What the dry run would have printed: one submission per array, the same as just submitted.
    planned = submissions(spec, plan, out, "slurm", entry)
    assert len(planned) == len(arrays), (len(planned), len(arrays))

    _, t_squeue = timed(subprocess.run, ["squeue", "-h", "-r", "-t", "all"], capture_output=True)
    rows, t_status_live = timed(sweep_status, out)
    states = {s: sum(r.state == s for r in rows) for s in ("queued", "running", "done", "failed")}
    print(f"status while in the queue: {t_status_live:.2f} s for {len(rows)} runs {states}")
    print(f"  baseline: one bare squeue call {t_squeue:.3f} s")

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < args.timeout:
        rows = sweep_status(out)
        if not any(r.state in ("queued", "running") for r in rows):
            break
        time.sleep(5)
    t_done = time.perf_counter() - t0
    rows, t_status_done = timed(sweep_status, out)
    text, t_format = timed(format_status, rows)
    done = sum(r.state == "done" for r in rows)
    print(f"all jobs over after {t_done:.1f} s more: {done}/{len(rows)} done")
    print(f"status over the finished sweep: {t_status_done:.2f} s (+ {t_format:.3f} s to format the table)")
    ok = max(t_status_live, t_status_done) < 5.0
    print(f"status target (< 5 s for {args.runs} runs): {'met' if ok else 'MISSED'}")
    print(text.splitlines()[-1])
    return 0 if ok and done == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
