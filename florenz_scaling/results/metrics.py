"""Generation metrics: the ``metrics.jsonl`` records and the columns of ``DIR/metrics.csv``.

Trainers append one record per (step, task, language, metric, decoding) to ``runs/<id>/metrics.jsonl``
(``train.generate``): BLEU, chrF, CIDEr, exact match and the synthetic world's attribute accuracies of the
decoded held-out samples. The one collector (``results.collect``) turns every run's file into one long table
beside results.csv: the same per-run keys, then ``metric``, ``decoding``, ``value``, ``n``.

Metric lines are records of kind ``metric`` (``results.records``: the metric and decoding are labels, the
score and n values), read by the one reader with the same damaged-file rules as losses (``results.reader``).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from florenz_scaling.results.reader import CollectWarning, DuplicateRecordsError, FileReport
from florenz_scaling.results.records import MetricRecord, read_lines
from florenz_scaling.results.table import POINT_COLUMNS, point

METRIC_COLUMNS = (*POINT_COLUMNS, "metric", "decoding", "value", "lower", "upper", "n", "final", "partial")
_ORDER = ("params", "total_steps", "run_id", "step", "task", "lang", "group", "metric", "decoding")

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
    # per-sample records live beside the metric records (they are not metrics.csv rows)
    other = [
        (i, f"a {r.kind} record in a metrics file") for i, r in good if r.kind not in ("metric", "sample")
    ]
    bad = sorted(bad + other)
    metric = [(i, MetricRecord.of(r)) for i, r in good if r.kind == "metric"]
    finite = [(i, r) for i, r in metric if math.isfinite(r.value)]
    return MetricsRead(
        [r for _, r in finite], bad, truncated, [(i, r) for i, r in metric if (i, r) not in finite]
    )


@dataclass
class MetricsReport:
    """What collecting the metric files found besides the rows: damaged files and runs without metrics."""

    problems: list[str] = field(default_factory=list)
    skipped_files: list[Path] = field(default_factory=list)
    runs_without_metrics: list[str] = field(default_factory=list)
    files: list[FileReport] = field(default_factory=list)  # what the reader found in each file read


def metric_row(run_id: str, run: dict[str, Any], r: MetricRecord, partial: bool) -> dict[str, Any]:
    """One row of ``METRIC_COLUMNS`` (then any further per-run columns of ``results.collect.run_info``)."""
    return {
        **point(run_id, run, r.step, r.task, r.lang, r.group),
        "metric": r.metric,
        "decoding": r.decoding,
        "value": float(r.value),
        # the bootstrap interval over samples; empty for records written before intervals were
        "lower": r.lower,
        "upper": r.upper,
        "n": r.n,
        "final": r.step == run["total_steps"],
        "partial": partial,
    }


def sort_metric_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by size, steps, run, step, pair, group, metric, decoding: the order of metrics.csv."""
    return sorted(rows, key=lambda r: tuple(r[k] for k in _ORDER))


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """metrics.csv's text: ``METRIC_COLUMNS`` first, then per-run columns the collector added."""
    buf = io.StringIO()
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
    "metric_row",
    "read_metrics",
    "rows_to_csv",
    "sort_metric_rows",
]
