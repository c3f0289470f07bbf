"""One demo size trained both ways: a cosine run per budget vs one WSD trunk with a branch per budget.

    python benchmarks/wsd_vs_cosine.py [--size T-0.5M] [--steps 150 200 250] [--out DIR]

Both sweeps are the same spec but for ``train.schedule`` (same data stream, seed, lr, warm-up), launched
with the local executor and collected. Prints the compute ratio WSD/cosine (the plan's: a branch counts the
samples it adds; and the measured wall time of each sweep), then per budget and held-out group the final
loss of each and the relative difference (WSD − cosine) / cosine. Hägele et al. (2024) find a cooldown
within a few percent of cosine at each budget.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("WANDB_MODE", "disabled")

from florenz_scaling.launch import format_status, launch, sweep_status  # noqa: E402
from florenz_scaling.plan import compute_ratio, make_plan, write_plan  # noqa: E402
from florenz_scaling.results import collect, group_losses  # noqa: E402
from florenz_scaling.spec import SweepSpec  # noqa: E402
from florenz_scaling.spec.load import apply_overrides, from_dict  # noqa: E402

BASE = {
    "name": "wsdbench",
    "seed": 44595,
    "grid": {"global_batch": 16},
    "train": {"lr": 1.0e-3, "warmup_steps": 10, "micro_batch": 16, "precision": "fp32", "threads": 1},
    "data": {"heldout_per_pair": 32},
    "generate": {"enabled": False},
    "launch": {"executor": "local", "resources": {"cpus_per_task": 1, "mem_gb": 2, "timeout_min": 30}},
}


def run_sweep(spec: SweepSpec, out: Path) -> tuple[object, float]:
    """Plan, launch locally, wait, collect; returns (group losses at each run's final step, wall seconds)."""
    plan = make_plan(spec)
    write_plan(spec, plan, out)
    t0 = time.perf_counter()
    res = launch(spec, out, plan, executor="local")
    while any(r.state in ("queued", "running") for r in sweep_status(out)):
        for j in res.jobs:
            j.done()
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    rows = sweep_status(out)
    if any(r.state != "done" for r in rows):
        raise SystemExit(format_status(rows))
    table = collect(out)
    g = group_losses(table[table["final"]])
    return g, wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="T-0.5M")
    ap.add_argument("--steps", type=int, nargs="+", default=[150, 200, 250])
    ap.add_argument("--shape", default="1-sqrt", choices=["linear", "cosine", "1-sqrt"])
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="wsd-vs-cosine-"))
    every = min(args.steps)
    common = [
        f"sizes=[{args.size}]",
        f"grid.steps={list(args.steps)}",
        f"train.eval_every={every}",
        f"train.checkpoint_every={every}",
        f"launch.array_parallelism={len(args.steps)}",
        f"train.lr={args.lr}",
    ]
    cosine = from_dict(SweepSpec, apply_overrides(BASE, common))
    wsd = from_dict(
        SweepSpec, apply_overrides(BASE, [*common, "train.schedule=wsd", f"train.decay_shape={args.shape}"])
    )
    ratio = compute_ratio(make_plan(wsd))
    g_cos, t_cos = run_sweep(cosine, out / "cosine")
    g_wsd, t_wsd = run_sweep(wsd, out / "wsd")
    print(
        f"size {args.size}, lr {args.lr:g}, budgets {args.steps} steps x 16, "
        f"WSD decay {wsd.train.decay_fraction:g} "
        f"({args.shape}), sweeps in {out}"
    )
    print(f"compute WSD/cosine (plan, samples added): {ratio:.3f}")
    print(
        f"wall time WSD/cosine (local executor; cosine runs {len(args.steps)} in parallel, the WSD chain "
        f"in one slot): {t_wsd:.0f} s / {t_cos:.0f} s = {t_wsd / t_cos:.2f}"
    )
    print(f"{'steps':>6s} {'group':>5s} {'cosine':>8s} {'wsd':>8s} {'rel diff':>9s}")
    worst = 0.0
    for steps in args.steps:
        for group in sorted(set(g_cos["group"]) - {""}):  # "": training pairs in no held-out group
            c = g_cos[(g_cos["total_steps"] == steps) & (g_cos["group"] == group)]["loss"].iloc[0]
            w = g_wsd[(g_wsd["total_steps"] == steps) & (g_wsd["group"] == group)]["loss"].iloc[0]
            worst = max(worst, abs(w - c) / c)
            print(f"{steps:6d} {group:>5s} {c:8.4f} {w:8.4f} {100 * (w - c) / c:+8.2f}%")
    print(f"largest |relative difference|: {100 * worst:.2f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
