"""The record contract between training and analysis, and the collected long table (no torch).

Trainers append typed ``LossRecord`` lines to ``runs/<id>/losses.jsonl``; ``collect`` turns every run's
records into ``results.csv`` / ``.parquet`` and ``conditioning.csv``; ``read_table`` reads them back typed.
"""

from florenz_scaling.results.collect import (
    CONDITIONING_COLUMNS,
    CollectReport,
    CollectWarning,
    DuplicateRecordsError,
    collect,
    collect_table,
)
from florenz_scaling.results.groups import GROUP_ORDER, group_order
from florenz_scaling.results.metrics import (
    METRIC_COLUMNS,
    DuplicateMetricsError,
    MetricRecord,
    MetricsWarning,
    collect_metrics,
    collect_metrics_table,
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
