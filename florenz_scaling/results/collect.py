"""The one collector: a sweep's record files -> ``results.csv`` (+ ``.parquet``), ``conditioning.csv`` and
``metrics.csv``, in one pass over its runs.

``results.csv``: one row per (run, step, task, language, group) of ``kind="eval"`` records, with exactly
``results.TABLE_COLUMNS``: per-run columns from ``plan.csv`` (or, for a run it lacks, ``run.yaml`` and the
size registry), then S = step × global batch, C = the planner's formula at that S, ``final`` (step == total
steps) and ``partial`` (the run has no ``DONE`` yet). ``metrics.csv``: the same keys per metric record
(``results.metrics``). Groups are the sweep's ``data.groups`` now (``results.groups.regroup``), not those a
record was written under; a pair several groups list has a row per group.

Record files are read by the one reader (``results.reader``) and its damaged-file rules: a truncated last
line is dropped, a file with any other bad line is skipped, non-finite values are kept out and mark the run
``diverged``, repeated record keys raise ``DuplicateRecordsError`` (nothing is written); each finding is a
``CollectWarning``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from florenz_scaling.files import SweepDir, atomic_path, write_atomic
from florenz_scaling.plan import read_plan
from florenz_scaling.results.groups import Groups, regroup, sweep_groups
from florenz_scaling.results.metrics import (
    MetricRecord,
    MetricsReport,
    metric_row,
    rows_to_csv,
    sort_metric_rows,
)
from florenz_scaling.results.reader import (
    CollectWarning,
    DuplicateRecordsError,
    FileReport,
    read_run_file,
    refuse_duplicates,
)
from florenz_scaling.results.records import LossRecord
from florenz_scaling.results.table import TABLE_COLUMNS, point


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
# sweeps from before the split). A probe a run did not write is empty. ``*_sd``: the standard deviation
# of the per-sample losses (empty for runs from before they were recorded), for intervals on the gaps.
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
    "loss_sd",
    "image_shuffled_loss_sd",
    "prompt_shuffled_loss_sd",
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
    "Collected",
    "collect",
    "collect_metrics",
    "collect_metrics_table",
    "collect_table",
    "gather",
    "run_info",
]


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


def _read_run(path: Path, run_id: str, total_steps: int, report: CollectReport | MetricsReport) -> list[Any]:
    """The usable records of one file, by the one reader's rules (``results.reader``)."""
    records, rep = read_run_file(path, (run_id, path.resolve().parent.name), total_steps)
    report.files.append(rep)
    report.problems += rep.problems
    if rep.skipped:
        report.skipped_files.append(path)
    if rep.nonfinite and isinstance(report, CollectReport):
        report.diverged[run_id] = min(r.step for _, r in rep.nonfinite)
    return records


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
                "loss_sd": ev.loss_sd,
                "image_shuffled_loss_sd": None,
                "prompt_shuffled_loss_sd": None,
            },
        )
        row[_PROBE_COLUMN[r.kind]] = float(r.loss)
        if r.kind != "shuffled":
            row[f"{_PROBE_COLUMN[r.kind]}_sd"] = r.loss_sd
    return list(rows.values())


@dataclass
class Collected:
    """Everything one pass over a sweep's runs found: the loss rows (``TABLE_COLUMNS``) with their report
    (which holds the conditioning rows), and the metric rows (``METRIC_COLUMNS``) with theirs."""

    loss_rows: list[dict[str, Any]]
    losses: CollectReport
    metric_rows: list[dict[str, Any]]
    metrics: MetricsReport

    def table(self) -> Any:
        """The loss rows as a pandas DataFrame with ``TABLE_COLUMNS``, in the table's order."""
        import pandas as pd

        table = pd.DataFrame(self.loss_rows, columns=list(TABLE_COLUMNS))
        table = table.sort_values(["params", "total_steps", "run_id", "step", "task", "lang"], kind="stable")
        return table.reset_index(drop=True)


def gather(sweep_dir: str | Path) -> Collected:
    """Read every run's losses.jsonl and metrics.jsonl once, regrouped by the sweep's groups now; writes
    nothing. Raises ``DuplicateRecordsError`` naming every file with a repeated record key."""
    sd = SweepDir(sweep_dir)
    groups = sweep_groups(sd.root)
    got = Collected([], CollectReport(), [], MetricsReport())
    for run_id, run in run_info(sd).items():
        rd = sd.run(run_id)
        partial = not rd.done.exists()
        if rd.losses.exists():
            got.loss_rows += _loss_rows(rd.losses, run_id, run, partial, groups, got.losses)
        else:
            got.losses.runs_without_records.append(run_id)
        if rd.metrics.exists():
            records = _read_run(rd.metrics, run_id, run["total_steps"], got.metrics)
            metrics = regroup((MetricRecord.of(r) for r in records if r.kind == "metric"), groups)
            got.metric_rows += [metric_row(run_id, run, r, partial) for r in metrics]
        else:
            got.metrics.runs_without_metrics.append(run_id)
    refuse_duplicates(got.losses.files + got.metrics.files)
    got.metric_rows = sort_metric_rows(got.metric_rows)
    return got


def _loss_rows(
    path: Path, run_id: str, run: dict[str, Any], partial: bool, groups: Groups | None, report: CollectReport
) -> list[dict[str, Any]]:
    """The results.csv rows of one run's eval records (its probes go to ``report.conditioning``)."""
    records = _read_run(path, run_id, run["total_steps"], report)
    losses = regroup(
        (LossRecord.of(r) for r in records if r.kind == "eval" or r.kind in _PROBE_COLUMN), groups
    )
    report.conditioning += _conditioning_rows(losses, run_id, run, partial)
    return [
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
        for r in losses
        if r.kind == "eval"
    ]


def collect_table(sweep_dir: str | Path) -> tuple[Any, CollectReport]:
    """The long table of a sweep (a pandas DataFrame with ``TABLE_COLUMNS``) and a report; writes nothing."""
    got = gather(sweep_dir)
    return got.table(), got.losses


def collect_metrics_table(sweep_dir: str | Path) -> tuple[list[dict[str, Any]], MetricsReport]:
    """The metric rows of a sweep (``METRIC_COLUMNS``, then per-run columns) and a report; writes nothing."""
    got = gather(sweep_dir)
    return got.metric_rows, got.metrics


def collect(sweep_dir: str | Path) -> Any:
    """Collect the sweep into ``results.csv``/``.parquet``, ``conditioning.csv`` (when a run wrote probes) and
    ``metrics.csv`` (when a run wrote metrics, or one was collected before); returns the loss table.

    Damaged files are reported as ``CollectWarning``s and in ``table.attrs``: ``problems`` (losses and
    metrics), ``runs_without_records``, ``diverged``; ``metrics`` holds the metric rows. Only repeated
    record keys are fatal (``DuplicateRecordsError``), before anything is written.
    """
    sd = SweepDir(sweep_dir)
    got = gather(sd.root)
    table = got.table()
    _write_atomic_frame(table, sd.results_csv, "csv")
    _write_atomic_frame(table, sd.results_parquet, "parquet")
    if got.losses.conditioning:
        import pandas as pd

        cond = pd.DataFrame(got.losses.conditioning, columns=list(CONDITIONING_COLUMNS))
        _write_atomic_frame(
            cond.sort_values(["params", "total_steps", "run_id", "task", "lang"]), sd.conditioning_csv, "csv"
        )
    _write_metrics(sd, got.metric_rows)
    table.attrs["problems"] = got.losses.problems + got.metrics.problems
    table.attrs["runs_without_records"] = got.losses.runs_without_records
    table.attrs["diverged"] = got.losses.diverged
    table.attrs["metrics"] = got.metric_rows
    return table


def collect_metrics(sweep_dir: str | Path) -> tuple[list[dict[str, Any]], MetricsReport]:
    """Collect only ``metrics.csv`` (atomically; nothing is written when no run has metrics and none was
    collected before); returns the rows and report."""
    sd = SweepDir(sweep_dir)
    got = gather(sd.root)
    _write_metrics(sd, got.metric_rows)
    return got.metric_rows, got.metrics


def _write_metrics(sd: SweepDir, rows: list[dict[str, Any]]) -> None:
    if rows or sd.metrics_csv.exists():
        write_atomic(sd.metrics_csv, rows_to_csv(rows))


def _write_atomic_frame(table: Any, path: Path, fmt: str) -> None:
    # Readers (fit, plot, a watching notebook) see the old table or the new one.
    with atomic_path(path) as tmp:
        if fmt == "csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
