"""``florenz-scaling launch SWEEP.yaml --out DIR [--executor local|slurm|debug] [--dry-run] [-o k=v]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from florenz_scaling.cli.plan import add_spec_args
from florenz_scaling.spec import EXECUTORS


def add_executor_arg(p: argparse.ArgumentParser) -> None:
    """``--executor``, shared by ``launch`` and ``run``."""
    p.add_argument(
        "--executor",
        choices=("auto", *EXECUTORS),
        help="where jobs run (default: launch.executor; auto: slurm if sinfo answers, else local)",
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``launch``."""
    p = sub.add_parser("launch", help="submit the sweep's runs that are not done, queued or running")
    add_spec_args(p)
    p.add_argument("--out", type=Path, help="sweep directory (required unless --dry-run)")
    add_executor_arg(p)
    p.add_argument(
        "--dry-run", action="store_true", help="print job parameters, build models on meta, submit nothing"
    )
    p.add_argument(
        "--only", action="append", default=[], metavar="RUN_ID", help="submit only this run (repeatable)"
    )
    p.add_argument("--retry-failed", action="store_true", help="submit only the runs whose last job failed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the dry run, or write the plan and submit; 1 when something outside the spec prevents it."""
    from florenz_scaling.launch.submit import LaunchError, launch
    from florenz_scaling.plan import make_plan, write_plan
    from florenz_scaling.spec import load_sweep

    spec = load_sweep(args.sweep, args.override)
    plan = make_plan(spec)
    if args.dry_run:  # the same submissions() list launch() would submit, printed instead
        from florenz_scaling.launch.dryrun import format_dry_run

        print(format_dry_run(spec, plan, args.executor))
        if spec.components is not None:
            print(
                "note: this sweep starts from pretrained tiny components (`components:`); launch builds "
                "them first (or reuses the cache) and names them in `pretrained:`, which also sets the run "
                "ids; `florenz-scaling components build` shows them"
            )
        return 0
    if args.out is None:
        print("error: --out DIR is required (or use --dry-run)", file=sys.stderr)
        return 2
    if spec.components is not None:  # the runs start from pretrained tiny components: build or reuse them
        from florenz_scaling.pretrain import ensure_components

        spec = ensure_components(spec, args.out, log=lambda m: print(f"components: {m}"))
        plan = make_plan(spec)
    from florenz_scaling.launch.dryrun.checkpoints import check_checkpoints

    check_checkpoints(spec, plan)  # refused before anything is written
    write_plan(spec, plan, args.out)
    try:
        res = launch(
            spec,
            args.out,
            plan,
            executor=args.executor,
            only=tuple(args.only),
            retry_failed=args.retry_failed,
        )
    except LaunchError as e:
        print(f"error: {e}; nothing was submitted", file=sys.stderr)
        return 1
    for run_id, job_id in res.submitted:
        print(f"submitted {run_id} as job {job_id} ({res.executor})")
    skipped: dict[str, int] = {}
    for reason in res.skipped.values():
        skipped[reason] = skipped.get(reason, 0) + 1
    summary = ", ".join(f"{n} {why}" for why, n in sorted(skipped.items()))
    print(f"{len(res.submitted)} run(s) submitted" + (f"; skipped: {summary}" if summary else ""))
    if res.folder is not None:
        print(f"job folder: {res.folder}")
    print(f"follow with: florenz-scaling status {args.out}")
    return 0
