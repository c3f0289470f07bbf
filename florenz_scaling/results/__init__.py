"""The record contract between training and analysis, and the collected long tables (no torch).

Trainers append records (``records``: losses, probes, metrics) to ``runs/<id>/losses.jsonl`` and
``metrics.jsonl`` through one writer; ``collect`` reads every run's files once with the one reader
(``reader``) and writes ``results.csv`` / ``.parquet``, ``conditioning.csv`` and ``metrics.csv``, grouped by
the sweep's reporting groups now (``groups``); ``read_table`` reads a table back typed.
"""

from florenz_scaling.results.collect import (
    CONDITIONING_COLUMNS,
    Collected,
    CollectReport,
    CollectWarning,
    DuplicateRecordsError,
    collect,
    collect_metrics,
    collect_metrics_table,
    collect_table,
    gather,
)
from florenz_scaling.results.groups import GROUP_ORDER, group_order, regroup, sweep_groups
from florenz_scaling.results.metrics import (
    METRIC_COLUMNS,
    DuplicateMetricsError,
    MetricRecord,
    MetricsReport,
    MetricsWarning,
    read_metrics,
)
from florenz_scaling.results.records import (
    LossRecord,
    ReadReport,
    RecordWriter,
    read_records,
    truncate_after_step,
)
from florenz_scaling.results.table import TABLE_COLUMNS, group_losses, read_table

__all__ = [
    "METRIC_COLUMNS",
    "DuplicateMetricsError",
    "MetricRecord",
    "MetricsWarning",
    "collect_metrics",
    "collect_metrics_table",
    "read_metrics",
    "CONDITIONING_COLUMNS",
    "GROUP_ORDER",
    "TABLE_COLUMNS",
    "CollectReport",
    "Collected",
    "MetricsReport",
    "gather",
    "regroup",
    "sweep_groups",
    "CollectWarning",
    "DuplicateRecordsError",
    "LossRecord",
    "ReadReport",
    "RecordWriter",
    "collect",
    "collect_table",
    "group_order",
    "group_losses",
    "read_records",
    "read_table",
    "truncate_after_step",
]
