"""Generation metrics: the ``metrics.jsonl`` record schema and its collection into ``DIR/metrics.csv``.

Trainers append one JSON line per (step, task, language, group, metric, decoding) to
``runs/<id>/metrics.jsonl`` (``train.generate``): BLEU, chrF, CIDEr, exact match and the synthetic world's
attribute accuracies of the decoded held-out samples. ``collect_metrics`` turns every run's file into one
long table beside results.csv: the same per-run keys, then ``metric``, ``decoding``, ``value``, ``n``.

Metric lines are records of kind ``metric`` (``results.records``: the metric and decoding are labels, the
score and n values), read by the one reader with the same damaged-file rules as losses (``results.reader``).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from florenz_scaling.files import SweepDir, write_atomic
from florenz_scaling.results.collect import point, run_info
from florenz_scaling.results.reader import (
    CollectWarning,
    DuplicateRecordsError,
    FileReport,
    read_run_file,
    refuse_duplicates,
)
from florenz_scaling.results.records import MetricRecord, read_lines
from florenz_scaling.results.table import POINT_COLUMNS

METRIC_COLUMNS = (*POINT_COLUMNS, "metric", "decoding", "value", "n", "final", "partial")


# One warning and one error for every record file (results.reader); the metric names stay for callers.
MetricsWarning = CollectWarning
DuplicateMetricsError = DuplicateRecordsError


@dataclass(frozen=True)
class MetricsRead:
    records: list[MetricRecord]  # well-formed, finite
    bad_lines: list[tuple[int, str]]
    truncated: bool
    nonfinite: list[tuple[int, MetricRecord]] = field(default_factory=list)


def read_metrics(path: str | Path) -> MetricsRead:
    """A metrics.jsonl file as typed metric records; malformed lines are reported, never silently used."""
    good, bad, truncated = read_lines(path)
    bad = sorted(bad + [(i, f"a {r.kind} record in a metrics file") for i, r in good if r.kind != "metric"])
    metric = [(i, MetricRecord.of(r)) for i, r in good if r.kind == "metric"]
    finite = [(i, r) for i, r in metric if math.isfinite(r.value)]
    return MetricsRead(
        [r for _, r in finite], bad, truncated, [(i, r) for i, r in metric if (i, r) not in finite]
    )


@dataclass
class MetricsReport:
    problems: list[str] = field(default_factory=list)
    skipped_files: list[Path] = field(default_factory=list)
    runs_without_metrics: list[str] = field(default_factory=list)
    files: list[FileReport] = field(default_factory=list)  # what the reader found in each file read


def _read_run(path: Path, run_id: str, total_steps: int, report: MetricsReport) -> list[MetricRecord]:
    """The metric records of one file, by the one reader's rules (``results.reader``)."""
    records, rep = read_run_file(path, (run_id, path.resolve().parent.name), total_steps)
    report.files.append(rep)
    report.problems += rep.problems
    if rep.skipped:
        report.skipped_files.append(path)
    return [MetricRecord.of(r) for r in records if r.kind == "metric"]


def collect_metrics_table(sweep_dir: str | Path) -> tuple[list[dict[str, Any]], MetricsReport]:
    """Rows with ``METRIC_COLUMNS`` (and any further per-run columns of ``results.collect``), sorted by size,
    steps, run, step, task, lang, metric, decoding, and a report; writes nothing."""
    sd = SweepDir(sweep_dir)
    report = MetricsReport()
    rows = []
    for run_id, run in run_info(sd).items():
        rd = sd.run(run_id)
        if not rd.metrics.exists():
            report.runs_without_metrics.append(run_id)
            continue
        partial = not rd.done.exists()
        for r in _read_run(rd.metrics, run_id, run["total_steps"], report):
            rows.append(
                {
                    **point(run_id, run, r.step, r.task, r.lang, r.group),
                    "metric": r.metric,
                    "decoding": r.decoding,
                    "value": float(r.value),
                    "n": r.n,
                    "final": r.step == run["total_steps"],
                    "partial": partial,
                }
            )
    refuse_duplicates(report.files)
    rows.sort(
        key=lambda r: (
            r["params"],
            r["total_steps"],
            r["run_id"],
            r["step"],
            r["task"],
            r["lang"],
            r["group"],
            r["metric"],
            r["decoding"],
        )
    )
    return rows, report


def collect_metrics(sweep_dir: str | Path) -> tuple[list[dict[str, Any]], MetricsReport]:
    """Collect every run's metrics.jsonl into ``DIR/metrics.csv`` (atomically); returns the rows and report.
    Nothing is written when no run has metrics."""
    sd = SweepDir(sweep_dir)
    rows, report = collect_metrics_table(sd.root)
    if rows or sd.metrics_csv.exists():
        write_atomic(sd.metrics_csv, rows_to_csv(rows))
    return rows, report


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    import io

    buf = io.StringIO()
    # Per-run columns results.collect adds beyond METRIC_COLUMNS (e.g. a schedule) follow them.
    extra = list(dict.fromkeys(k for r in rows for k in r if k not in METRIC_COLUMNS))
    writer = csv.DictWriter(buf, fieldnames=[*METRIC_COLUMNS, *extra], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


__all__ = [
    "METRIC_COLUMNS",
    "DuplicateMetricsError",
    "MetricRecord",
    "MetricsRead",
    "MetricsReport",
    "MetricsWarning",
    "collect_metrics",
    "collect_metrics_table",
    "read_metrics",
]
