"""``florenz-scaling run SWEEP.yaml --out DIR [--executor ...]``: the whole study in one command.

    plan ─▶ launch ─▶ wait (progress bar) ─▶ collect ─▶ fit ─▶ plot ─▶ report

Every stage is skipped when its outputs are current, so running the command again after an interruption (or
after adding sizes to the sweep) does only the missing work:
- plan: ``sweep.yaml`` already holds this exact resolved spec (and ``plan.csv`` exists);
- launch / wait: every run has ``DONE`` (launch itself also skips done, queued and running runs);
- collect: ``results.csv`` is newer than ``plan.csv`` and every run's ``losses.jsonl`` and ``DONE``;
- fit: every ``fits/*.json`` is newer than ``results.csv`` and ``sweep.yaml`` (which holds the fit settings);
- plot: every ``plots/*`` is newer than ``results.csv`` and the fits;
- report: ``report.html`` is newer than the table, the fits, the plots and the ledger.
fit, plot and report belong to their own modules; a stage whose module cannot be imported fails loudly.
The wait polls ``launch.status.sweep_status``, the same run states ``status`` prints.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import yaml

from florenz_scaling.cli.isoflop import isoflop_stage
from florenz_scaling.cli.launch import add_executor_arg
from florenz_scaling.cli.plan import add_spec_args
from florenz_scaling.files import SweepDir
from florenz_scaling.spec import SweepSpec, load_sweep, to_plain

# Nothing from launch/ at import time: it loads submitit, and the command should start fast (see cli/).
if TYPE_CHECKING:
    from florenz_scaling.launch.status import RunStatus


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``run``."""
    p = sub.add_parser("run", help="the whole study: plan, launch, wait, collect, fit, plot, report")
    add_spec_args(p)
    p.add_argument("--out", type=Path, required=True, help="sweep directory")
    add_executor_arg(p)
    p.add_argument("--poll", type=float, default=5.0, metavar="S", help="seconds between status polls")
    a = p.add_argument_group("adaptive design (design.adaptive; rounds in OUT/design/rounds.jsonl)")
    a.add_argument("--adaptive", action="store_true", help="pilot, then buy runs round by round (--budget)")
    a.add_argument("--budget", type=float, metavar="GPU-h", help="total estimated GPU-hours to spend")
    a.add_argument("--law", help="law whose target to pin down (default chinchilla if fitted)")
    a.add_argument("--target", help='"P=…,S=…", "C=…" or a parameter (default: the costliest candidate)')
    a.add_argument("--width", type=float, help="stop once the target's 95%% interval is narrower than this")
    a.add_argument("--k", type=int, default=2, help="runs bought per round")
    a.add_argument("--group", help="group of pairs to design for")
    a.add_argument("--pair", metavar="TASK/LANG", help="pair to design for")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The ``run`` command: the pipeline, with a stage's error as one line and exit status 1."""
    from florenz_scaling.launch.submit import LaunchError

    if args.adaptive:
        return _adaptive(args)
    try:
        report = run_pipeline(args.sweep, args.out, args.override, executor=args.executor, poll_s=args.poll)
    except (PipelineError, LaunchError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"open {report.resolve()}")
    return 0


def _adaptive(args: argparse.Namespace) -> int:
    """``run --adaptive``: the design loop, each round through ``run_pipeline``; every round to the ledger."""
    from florenz_scaling.design import DesignError
    from florenz_scaling.design.adaptive import run_adaptive
    from florenz_scaling.launch.ledger import Ledger
    from florenz_scaling.launch.submit import LaunchError

    if args.budget is None:
        print("error: --adaptive needs --budget GPU-h", file=sys.stderr)
        return 2
    ledger = Ledger(SweepDir(args.out).ledger)
    try:
        run_adaptive(
            args.sweep,
            args.out,
            budget=args.budget,
            overrides=args.override,
            law=args.law,
            target=args.target,
            width=args.width,
            k=args.k,
            group=args.group,
            pair=args.pair,
            run_round=lambda y: run_pipeline(y, args.out, executor=args.executor, poll_s=args.poll),
            record=lambda row: ledger.record("round", "_design", **row),
        )
    except (PipelineError, LaunchError, DesignError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    # Each round's pipeline wrote the report before that round was recorded: once more, with every round.
    report = _report(SweepDir(args.out), lambda m: print(m, flush=True))
    print(f"open {report.resolve()}")
    return 0


class PipelineError(RuntimeError):
    """A stage cannot go on (failed runs, a stage's module missing); the message says which and why."""


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def _newest(paths: Iterable[Path]) -> float:
    return max((_mtime(p) for p in paths), default=0.0)


def _current(outputs: list[Path], inputs: Iterable[Path]) -> bool:
    """Outputs exist and the oldest of them is at least as new as the newest input."""
    if not outputs or not all(p.exists() for p in outputs):
        return False
    return min(_mtime(p) for p in outputs) >= _newest(inputs)


def plan_is_current(spec: SweepSpec, sd: SweepDir) -> bool:
    """``sweep.yaml`` holds exactly this resolved spec (so plan.csv, written with it, is current too)."""
    if not (sd.sweep_yaml.exists() and sd.plan_csv.exists()):
        return False
    try:
        return yaml.safe_load(sd.sweep_yaml.read_text()) == to_plain(spec)
    except yaml.YAMLError:
        return False


def wait_for_runs(
    out: str | Path,
    run_ids: list[str],
    poll_s: float = 5.0,
    jobs: list[Any] | None = None,
    file: TextIO | None = None,
) -> list[RunStatus]:
    """Poll ``status`` until no run is queued or running, with a tqdm bar of done runs; returns the rows."""
    from tqdm import tqdm

    from florenz_scaling.launch.status import sweep_status

    wanted = set(run_ids)
    stream = file or sys.stderr
    # In a log file (CI, a SLURM job, `> demo.log`) a redrawn bar is noise: there, a line per change.
    bar = tqdm(
        total=len(wanted),
        desc="runs done",
        unit="run",
        file=stream,
        dynamic_ncols=True,
        disable=not stream.isatty(),
    )
    last: dict[str, int] = {}
    try:
        while True:
            for job in jobs or ():
                if job.__class__.__name__ == "LocalJob":
                    job.done()  # polls (and so reaps) our own local controller processes
            rows = [r for r in sweep_status(out) if r.run_id in wanted]
            counts = {s: sum(r.state == s for r in rows) for s in ("done", "running", "queued", "failed")}
            bar.n = counts["done"]
            bar.set_postfix(running=counts["running"], queued=counts["queued"], failed=counts["failed"])
            bar.refresh()
            if bar.disable and counts != last:
                print(
                    f"runs: {counts['done']}/{len(wanted)} done, {counts['running']} running, "
                    f"{counts['queued']} queued, {counts['failed']} failed",
                    file=stream,
                    flush=True,
                )
                last = counts
            if counts["running"] + counts["queued"] == 0:
                return rows
            time.sleep(poll_s)
    finally:
        bar.close()


def run_pipeline(
    sweep: str | Path,
    out: str | Path,
    overrides: list[str] | None = None,
    executor: str | None = None,
    poll_s: float = 5.0,
    entry: str | None = None,
    say: TextIO | None = None,
) -> Path:
    """Plan, launch, wait, collect, fit, plot and report; returns the path of ``report.html``.

    ``entry`` is the ``module:function`` every job calls with its run directory (default: the trainer).
    """
    from florenz_scaling.launch.jobs import DEFAULT_ENTRY
    from florenz_scaling.launch.status import format_status, sweep_status
    from florenz_scaling.launch.submit import launch
    from florenz_scaling.plan import make_plan, write_plan

    t0 = time.monotonic()

    def log(msg: str) -> None:
        # The time since the pipeline started on every line, so each stage's cost is visible.
        print(f"[{time.monotonic() - t0:6.0f} s] {msg}", file=say or sys.stdout, flush=True)

    sd = SweepDir(out)
    spec = load_sweep(sweep, overrides or [])
    if spec.components is not None:  # pretrained tiny components the sweep starts from (cached)
        from florenz_scaling.pretrain import ensure_components

        spec = ensure_components(spec, sd.root, log=lambda m: log(f"components: {m}"))
        log("components: ready")
    plan = make_plan(spec)
    if plan_is_current(spec, sd):
        log(f"plan: current ({len(plan)} runs)")
    else:
        write_plan(spec, plan, sd.root)
        log(f"plan: wrote {sd.plan_csv} ({len(plan)} runs)")

    ids = [r.run_id for r in plan]
    if all(sd.run(i).done.exists() for i in ids):
        log("launch: every run is done")
    else:
        res = launch(spec, sd.root, plan, executor=executor, entry=entry or DEFAULT_ENTRY)
        busy = sum(1 for s in res.skipped.values() if s in ("queued", "running"))
        log(
            f"launch: submitted {len(res.submitted)} run(s) on {res.executor}, {busy} already in the queue, "
            f"{sum(1 for s in res.skipped.values() if s == 'done')} done"
        )
        rows = wait_for_runs(sd.root, ids, poll_s, res.jobs)
        failed = [r for r in rows if r.state == "failed"]
        if failed or any(r.state != "done" for r in rows):
            log(format_status(sweep_status(sd.root)))
            if failed:
                _collect(sd, log)  # keep what finished; the fit would mislead on an incomplete grid
                raise PipelineError(
                    f"{len(failed)} run(s) failed (errors and logs above); fix them and run again, or retry "
                    f"with `florenz-scaling launch SWEEP --out {sd.root} --retry-failed`"
                )
            raise PipelineError(
                "some runs were neither done nor failed (cancelled?); run again to resume them"
            )

    _collect(sd, log)
    _fit(spec, sd, log)
    isoflop_stage(spec, sd, log, _current)  # a budget sweep: N_opt, D_opt per budget, three approaches
    _plot(sd, log)
    report = _report(sd, log)
    log(f"report: {report}")
    return report


def _collect(sd: SweepDir, log: Callable[[str], None]) -> None:
    from florenz_scaling.results import collect

    inputs = [
        sd.plan_csv,
        sd.sweep_yaml,  # its data.groups: regrouping recollects, it retrains nothing
        *sd.runs.glob("*/losses.jsonl"),
        *sd.runs.glob("*/metrics.jsonl"),
        *sd.runs.glob("*/DONE"),
    ]
    if _current([sd.results_csv, sd.results_parquet], inputs):
        log("collect: current")
        return
    table = collect(sd.root)  # results.csv and metrics.csv, in one pass
    metrics = table.attrs["metrics"]
    for p in table.attrs["problems"]:
        log(f"collect: warning: {p}")
    extra = f", {len(metrics)} metric rows -> {sd.metrics_csv}" if metrics else ""
    log(f"collect: {len(table)} rows -> {sd.results_csv}{extra}")


def _stage_module(stage: str, module: str, name: str) -> Callable[..., object]:
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise PipelineError(
            f"{stage}: cannot import {module}.{name} ({e}); this stage is not available"
        ) from e


def _fit(spec: SweepSpec, sd: SweepDir, log: Callable[[str], None]) -> None:
    fits = sorted(sd.fits.glob("*.json")) if sd.fits.is_dir() else []
    inputs = [sd.results_csv, sd.sweep_yaml] + ([sd.metrics_csv] if sd.metrics_csv.exists() else [])
    if _current(fits, inputs):
        log(f"fit: current ({len(fits)} fits)")
        return
    fit_sweep = _stage_module("fit", "florenz_scaling.fit", "fit_sweep")
    fit = spec.fit
    written = fit_sweep(
        sd.root,
        laws=fit.law_names,
        bootstrap=fit.bootstrap,
        per_pair=fit.per_pair,
        written_laws=fit.written_laws,
    )
    log(f"fit: wrote {len(written)} fit(s) to {sd.fits}")


def _plot(sd: SweepDir, log: Callable[[str], None]) -> None:
    plots = sorted(sd.plots.iterdir()) if sd.plots.is_dir() else []
    fits = sorted(sd.fits.glob("*.json")) if sd.fits.is_dir() else []
    if _current(plots, [sd.results_csv, *fits]):
        log(f"plot: current ({len(plots)} files)")
        return
    plot_sweep = _stage_module("plot", "florenz_scaling.plot.sweep", "plot_sweep")
    written = plot_sweep(sd.root)
    log(f"plot: wrote {len(written)} file(s) to {sd.plots}")


def _report(sd: SweepDir, log: Callable[[str], None]) -> Path:
    plots = sorted(sd.plots.iterdir()) if sd.plots.is_dir() else []
    fits = sorted(sd.fits.glob("*.json")) if sd.fits.is_dir() else []
    rounds = sd.root / "design" / "rounds.jsonl"  # run --adaptive's rounds, shown by the report
    if _current([sd.report], [sd.results_csv, sd.ledger, rounds, *fits, *plots]):
        log("report: current")
        return sd.report
    write_report = _stage_module("report", "florenz_scaling.report", "write_report")
    return Path(write_report(sd.root))
