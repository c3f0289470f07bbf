"""Collect a sweep's held-out losses into one long table: ``DIR/results.csv`` and ``DIR/results.parquet``.

One row per (run, step, task, language) of ``kind="eval"`` records, with exactly ``results.TABLE_COLUMNS``:
per-run columns from ``plan.csv`` (or, for a run it lacks, ``run.yaml`` and the size registry), then
S = step × global batch, C = the planner's formula at that S, ``final`` (step == total steps) and ``partial``
(the run has no ``DONE`` yet).

Damaged record files never crash the collection, and bad data is never used silently. The rule:
- a truncated last line (a writer killed mid-write, which training recovers from on resume) is dropped and
  the file's complete lines are used, with a warning;
- any other bad line (not JSON, missing fields, another run's id, a step past the run's end) means the file
  cannot be trusted: the whole file is skipped, with a warning listing the file and its bad lines;
- a well-formed record with a NaN or infinite loss means the run diverged: such records are kept out of the
  table (no mean or fit sees them), reported with file and line, and the run's rows are marked ``diverged``.
Duplicated (run, step, task, lang, group) records are a bug in whatever wrote them (a resumed run rewrites
its records exactly once): ``DuplicateRecordsError`` names them and nothing is written.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from florenz_scaling.files import SweepDir, atomic_path
from florenz_scaling.plan import read_plan
from florenz_scaling.results.records import read_records
from florenz_scaling.results.table import TABLE_COLUMNS
from florenz_scaling.spec.sizes import compute_gmacs

_KEY = ("run_id", "step", "task", "lang", "group")


class CollectWarning(UserWarning):
    """A record file was damaged: part or all of it was left out of the table."""


class DuplicateRecordsError(ValueError):
    """The same (run, step, task, lang, group) appears more than once."""


@dataclass
class CollectReport:
    """What ``collect`` found besides the table: damaged files and runs without records."""

    problems: list[str] = field(default_factory=list)
    skipped_files: list[Path] = field(default_factory=list)
    runs_without_records: list[str] = field(default_factory=list)
    diverged: dict[str, int] = field(default_factory=dict)  # run_id -> first step with a non-finite loss
    conditioning: list[dict[str, Any]] = field(default_factory=list)  # rows of ``CONDITIONING_COLUMNS``


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


def _read_run(path: Path, run_id: str, total_steps: int, report: CollectReport) -> list[Any]:
    """The eval records of one file, by the rule in the module docstring."""
    rep = read_records(path)
    bad = list(rep.bad_lines)
    n_lines = len([ln for ln in path.read_bytes().split(b"\n") if ln.strip()])
    if rep.truncated and bad and bad[-1][0] == n_lines:
        line, why = bad.pop()
        msg = (
            f"{path}: last line {line} is truncated ({why}); dropped it, using the {len(rep.records)} others"
        )
        report.problems.append(msg)
        warnings.warn(msg, CollectWarning, stacklevel=3)
    if rep.nonfinite:
        first_line, first = rep.nonfinite[0]
        report.diverged[run_id] = min(r.step for _, r in rep.nonfinite)
        msg = (
            f"{path}: {len(rep.nonfinite)} record(s) with a non-finite loss, kept out of the table (the run "
            f"diverged); first: line {first_line}, step {first.step}, {first.kind} "
            f"{first.task or 'train'}/{first.lang or '-'} loss {first.loss}"
        )
        report.problems.append(msg)
        warnings.warn(msg, CollectWarning, stacklevel=3)
    for i, r in enumerate(rep.records):
        if r.run_id not in (run_id, path.resolve().parent.name):  # an old id's directory (spec.old_runs)
            bad.append((i + 1, f"record of run {r.run_id!r} in {run_id}'s file"))
        elif r.step > total_steps or r.step < 0:
            bad.append((i + 1, f"step {r.step} outside 0..{total_steps}"))
    if bad:
        lines = "; ".join(f"line {n}: {why}" for n, why in bad[:10])
        more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
        msg = f"{path}: {len(bad)} bad line(s), skipping the whole file: {lines}{more}"
        report.problems.append(msg)
        report.skipped_files.append(path)
        warnings.warn(msg, CollectWarning, stacklevel=3)
        return []
    return [r for r in rep.records if r.kind == "eval" or r.kind in _PROBE_COLUMN]


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
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    dup = table.duplicated(subset=list(_KEY), keep=False)
    if dup.any():
        keys = table.loc[dup, list(_KEY)].drop_duplicates().head(10).to_dict("records")
        raise DuplicateRecordsError(
            f"{int(dup.sum())} rows share a (run, step, task, lang, group) with another; first: {keys}. "
            "A run wrote the same evaluation twice: inspect its losses.jsonl."
        )
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
