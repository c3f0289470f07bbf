"""The demo end to end with its components: build (or reuse) them, run the sweep, print the conditioning gaps.

    .venv/bin/python benchmarks/demo_components.py [--out runs/demo-bench] [-o key=value ...]

Prints the wall time per stage and, per size at its largest budget, the image-shuffle gap of SC and UC and
the prompt-shuffle gap of ST (held-out loss with that input taken from another sample minus the true loss),
with the issue's acceptance checks: SC > 0.3, UC > 0.1, ST > 0.3, UC strictly increasing with size.
Until ``run`` calls ``ensure_components`` itself, this script does it and hands ``run`` the resolved spec.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

from florenz_scaling.cli.run import run_pipeline
from florenz_scaling.pretrain import ensure_components
from florenz_scaling.spec import dump_yaml, load_sweep

REPO = Path(__file__).resolve().parents[1]


def gaps(conditioning_csv: Path) -> pd.DataFrame:
    """Per (size, total steps, group): sample-weighted image and prompt gaps at the run's final step."""
    cond = pd.read_csv(conditioning_csv)
    cond = cond[(cond.step == cond.total_steps) & (cond.group != "") & cond.group.notna()]
    cond = cond.assign(
        image_gap=cond.image_shuffled_loss - cond.loss, prompt_gap=cond.prompt_shuffled_loss - cond.loss
    )
    rows = []
    for (size, params, steps, group), d in cond.groupby(["size", "params", "total_steps", "group"]):
        w = d.samples / d.samples.sum()
        rows.append(
            {
                "size": size,
                "params": params,
                "steps": steps,
                "group": group,
                "loss": (d.loss * w).sum(),
                "image_gap": (d.image_gap * w).sum(),
                "prompt_gap": (d.prompt_gap * w).sum(),
            }
        )
    return pd.DataFrame(rows).sort_values(["params", "steps", "group"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweep", type=Path, default=REPO / "sweeps" / "demo.yaml")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "demo-bench")
    p.add_argument("-o", "--override", action="append", default=[])
    args = p.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    t0 = time.perf_counter()
    spec = ensure_components(load_sweep(args.sweep, args.override), args.out)
    t_components = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    resolved = args.out.parent / f".{args.out.name}-resolved.yaml"
    dump_yaml(spec.to_dict(), resolved)
    t1 = time.perf_counter()
    run_pipeline(resolved, args.out)
    t_runs = time.perf_counter() - t1
    table = gaps(args.out / "conditioning.csv")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    last = table[table.steps == table.groupby("size").steps.transform("max")].set_index(["size", "group"])
    sizes = list(dict.fromkeys(table["size"]))
    checks = {
        "SC image gap > 0.3": all(last.loc[(s, "SC"), "image_gap"] > 0.3 for s in sizes),
        "UC image gap > 0.1": all(last.loc[(s, "UC"), "image_gap"] > 0.1 for s in sizes),
        "ST prompt gap > 0.3": all(last.loc[(s, "ST"), "prompt_gap"] > 0.3 for s in sizes),
        "UC gap grows with size": all(
            last.loc[(a, "UC"), "image_gap"] < last.loc[(b, "UC"), "image_gap"]
            for a, b in zip(sizes, sizes[1:], strict=False)
        ),
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    print(
        f"wall: components {t_components:.0f} s, runs + collect/fit/plot/report {t_runs:.0f} s, "
        f"total {time.perf_counter() - t0:.0f} s"
    )
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
