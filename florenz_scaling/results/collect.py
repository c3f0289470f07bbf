"""Collect a sweep's held-out losses into one long table: ``DIR/results.csv`` and ``DIR/results.parquet``.

One row per (run, step, task, language) of ``kind="eval"`` records, with exactly ``results.TABLE_COLUMNS``:
per-run columns from ``plan.csv`` (or, for a run it lacks, ``run.yaml`` and the size registry), then
S = step × global batch, C = the planner's formula at that S, ``final`` (step == total steps) and ``partial``
(the run has no ``DONE`` yet).

Record files are read by the one reader (``results.reader``) and its damaged-file rules: a truncated last
line is dropped, a file with any other bad line is skipped, non-finite values are kept out and mark the run
``diverged``, repeated record keys raise ``DuplicateRecordsError``; each finding is a ``CollectWarning``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from florenz_scaling.files import SweepDir, atomic_path
from florenz_scaling.plan import read_plan
from florenz_scaling.results.reader import (
    CollectWarning,
    DuplicateRecordsError,
    FileReport,
    read_run_file,
    refuse_duplicates,
)
from florenz_scaling.results.records import LossRecord
from florenz_scaling.results.table import TABLE_COLUMNS
from florenz_scaling.spec.sizes import compute_gmacs


@dataclass
class CollectReport:
    """What ``collect`` found besides the table: damaged files and runs without records."""

    problems: list[str] = field(default_factory=list)
    skipped_files: list[Path] = field(default_factory=list)
    runs_without_records: list[str] = field(default_factory=list)
    diverged: dict[str, int] = field(default_factory=dict)  # run_id -> first step with a non-finite loss
    conditioning: list[dict[str, Any]] = field(default_factory=list)  # rows of ``CONDITIONING_COLUMNS``
    files: list[FileReport] = field(default_factory=list)  # what the reader found in each file read


# conditioning.csv: where a run wrote shuffled records (its final step), the pair's held-out loss next to
# the loss with every sample's image (``image_shuffled_loss``) or prompt (``prompt_shuffled_loss``) taken
# from another sample; ``shuffled_loss`` is the older probe that shuffled both at once (kind="shuffled",
# sweeps from before the split). A probe a run did not write is empty.
CONDITIONING_COLUMNS = (
    "run_id",
    "size",
    "params",
    "total_steps",
    "step",
    "seen_samples",
    "task",
    "lang",
    "group",
    "loss",
    "image_shuffled_loss",
    "prompt_shuffled_loss",
    "shuffled_loss",
    "samples",
    "partial",
)
_PROBE_COLUMN = {
    "shuffled_image": "image_shuffled_loss",
    "shuffled_prompt": "prompt_shuffled_loss",
    "shuffled": "shuffled_loss",
}


__all__ = [
    "CONDITIONING_COLUMNS",
    "CollectReport",
    "CollectWarning",
    "DuplicateRecordsError",
    "collect",
    "collect_table",
    "point",
    "run_info",
]


def point(run_id: str, run: dict[str, Any], step: int, task: str, lang: str, group: str) -> dict[str, Any]:
    """The ``POINT_COLUMNS`` of one row of a long table: the run's columns, S = step × global batch and the
    planner's C at that S, and the pair."""
    seen = step * run["global_batch"]
    c = compute_gmacs(seen, run["fwd_gmacs"], run["params"], run["trainable_params"])
    return {
        "run_id": run_id,
        **run,
        "step": step,
        "seen_samples": seen,
        "compute_gmacs": c,
        "task": task,
        "lang": lang,
        "group": group,
    }


def run_info(sd: SweepDir) -> dict[str, dict[str, Any]]:
    """run_id -> per-run columns, from plan.csv (without one: from each run.yaml and the size registry)."""
    info: dict[str, dict[str, Any]] = {}
    if sd.plan_csv.exists():
        for r in read_plan(sd.root):
            info[r["run_id"]] = {
                "size": r["size"],
                "family": r["family"],
                "params": int(r["params"]),
                "trainable_params": int(r["trainable_params"]),
                "fwd_gmacs": float(r["fwd_gmacs"]),
                "total_steps": int(r["steps"]),
                "global_batch": int(r["global_batch"]),
                # A plan from before WSD sweeps has no such columns: all its runs are cosine runs.
                "schedule": r.get("schedule") or "cosine",
                "role": r.get("role") or "run",
                "branch_of": r.get("branch_of") or "",
            }
    else:
        from florenz_scaling.spec import load_run
        from florenz_scaling.spec.sizes import get_size

        for y in sorted(sd.runs.glob("*/run.yaml")):
            run = load_run(y)
            size = get_size(run.size)
            info[y.parent.name] = {
                "size": run.size,
                "family": size.family,
                "params": size.params,
                "trainable_params": size.trainable_params,
                "fwd_gmacs": size.fwd_gmacs,
                "total_steps": run.steps,
                "global_batch": run.global_batch,
                "schedule": run.train.schedule,
                "role": "trunk" if run.trunk else "branch" if run.start_from else "run",
                "branch_of": run.start_from or "",
            }
    return info


def _read_run(path: Path, run_id: str, total_steps: int, report: CollectReport) -> list[LossRecord]:
    """The loss and probe records of one file, by the one reader's rules (``results.reader``)."""
    records, rep = read_run_file(path, (run_id, path.resolve().parent.name), total_steps)
    report.files.append(rep)
    report.problems += rep.problems
    if rep.skipped:
        report.skipped_files.append(path)
    if rep.nonfinite:
        report.diverged[run_id] = min(r.step for _, r in rep.nonfinite)
    return [LossRecord.of(r) for r in records if r.kind == "eval" or r.kind in _PROBE_COLUMN]


def _conditioning_rows(
    records: list[Any], run_id: str, run: dict[str, Any], partial: bool
) -> list[dict[str, Any]]:
    """One row per (step, pair, group) with an eval record and at least one shuffled probe."""
    evals = {(r.step, r.task, r.lang, r.group): r for r in records if r.kind == "eval"}
    rows: dict[tuple, dict[str, Any]] = {}
    for r in records:
        key = (r.step, r.task, r.lang, r.group)
        ev = evals.get(key)
        if r.kind not in _PROBE_COLUMN or ev is None:
            continue
        row = rows.setdefault(
            key,
            {
                "run_id": run_id,
                "size": run["size"],
                "params": run["params"],
                "total_steps": run["total_steps"],
                "step": r.step,
                "seen_samples": r.seen_samples,
                "task": r.task,
                "lang": r.lang,
                "group": r.group,
                "loss": float(ev.loss),
                **{c: None for c in _PROBE_COLUMN.values()},
                "samples": r.samples,
                "partial": partial,
            },
        )
        row[_PROBE_COLUMN[r.kind]] = float(r.loss)
    return list(rows.values())


def collect_table(sweep_dir: str | Path) -> tuple[Any, CollectReport]:
    """The long table of a sweep (a pandas DataFrame with ``TABLE_COLUMNS``) and a report; writes nothing."""
    import pandas as pd

    sd = SweepDir(sweep_dir)
    info = run_info(sd)
    report = CollectReport()
    rows = []
    for run_id, run in info.items():
        rd = sd.run(run_id)
        if not rd.losses.exists():
            report.runs_without_records.append(run_id)
            continue
        partial = not rd.done.exists()
        records = _read_run(rd.losses, run_id, run["total_steps"], report)
        report.conditioning += _conditioning_rows(records, run_id, run, partial)
        for r in (r for r in records if r.kind == "eval"):  # duplicates too: the check below names them
            rows.append(
                {
                    **point(run_id, run, r.step, r.task, r.lang, r.group),
                    "loss": float(r.loss),
                    "samples": r.samples,
                    "tokens": r.tokens,
                    # A trunk segment's last step is a constant-lr point, no schedule's endpoint.
                    "final": r.step == run["total_steps"] and run["role"] != "trunk",
                    "partial": partial,
                    "diverged": run_id in report.diverged,
                }
            )
    refuse_duplicates(report.files)
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    table = table.sort_values(["params", "total_steps", "run_id", "step", "task", "lang"], kind="stable")
    return table.reset_index(drop=True), report


def collect(sweep_dir: str | Path) -> Any:
    """Collect the sweep into ``DIR/results.csv`` and ``DIR/results.parquet``; returns the DataFrame.

    Damaged files are reported as ``CollectWarning``s (and in ``table.attrs["problems"]``), never fatal.
    """
    sd = SweepDir(sweep_dir)
    table, report = collect_table(sd.root)
    _write_atomic_frame(table, sd.results_csv, "csv")
    _write_atomic_frame(table, sd.results_parquet, "parquet")
    if report.conditioning:
        import pandas as pd

        cond = pd.DataFrame(report.conditioning, columns=list(CONDITIONING_COLUMNS))
        _write_atomic_frame(
            cond.sort_values(["params", "total_steps", "run_id", "task", "lang"]), sd.conditioning_csv, "csv"
        )
    table.attrs["problems"] = report.problems
    table.attrs["runs_without_records"] = report.runs_without_records
    table.attrs["diverged"] = report.diverged
    return table


def _write_atomic_frame(table: Any, path: Path, fmt: str) -> None:
    # Readers (fit, plot, a watching notebook) see the old table or the new one.
    with atomic_path(path) as tmp:
        if fmt == "csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
