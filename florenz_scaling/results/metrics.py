"""Generation metrics: the ``metrics.jsonl`` record schema and its collection into ``DIR/metrics.csv``.

Trainers append one JSON line per (step, task, language, group, metric, decoding) to
``runs/<id>/metrics.jsonl`` (``train.generate``): BLEU, chrF, CIDEr, exact match and the synthetic world's
attribute accuracies of the decoded held-out samples. ``collect_metrics`` turns every run's file into one
long table beside results.csv: the same per-run keys, then ``metric``, ``decoding``, ``value``, ``n``.

Damaged files follow ``results.collect``'s rule: a truncated last line is dropped with a warning and the rest
used; any other bad line skips the whole file with a warning naming it; a non-finite value is kept out of
the table and reported. Duplicated keys are a writer's bug and raise ``DuplicateRecordsError``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from florenz_scaling.files import SweepDir, write_atomic
from florenz_scaling.results.collect import point, run_info
from florenz_scaling.results.table import POINT_COLUMNS

METRIC_COLUMNS = (*POINT_COLUMNS, "metric", "decoding", "value", "n", "final", "partial")
_KEY = ("run_id", "step", "task", "lang", "group", "metric", "decoding")


class MetricsWarning(UserWarning):
    """A metrics file was damaged: part or all of it was left out of the table."""


class DuplicateMetricsError(ValueError):
    """The same (run, step, task, lang, group, metric, decoding) appears more than once."""


@dataclass(frozen=True)
class MetricRecord:
    """One score of one run's decoded held-out samples of one pair at one step, decoded one way."""

    run_id: str
    step: int
    seen_samples: int
    task: str
    lang: str
    group: str  # "" for a training pair no group lists
    metric: str  # bleu, chrf, cider, exact_match, attr_acc, attr_shape, ...
    decoding: str  # greedy, beam4, greedy+prefix, beam4+prefix, ...
    value: float
    n: int  # samples the score is over

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MetricRecord:
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in d]
        if missing:
            raise ValueError(f"record lacks {', '.join(missing)}")
        rec = cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})
        number = isinstance(rec.value, (int, float)) and not isinstance(rec.value, bool)
        counts = (rec.step, rec.seen_samples, rec.n)
        ints = all(isinstance(x, int) and not isinstance(x, bool) for x in counts)
        texts = all(
            isinstance(x, str) for x in (rec.run_id, rec.task, rec.lang, rec.group, rec.metric, rec.decoding)
        )
        if not (number and ints and texts):
            raise ValueError("value must be a number, step/seen_samples/n integers, the keys strings")
        return rec


@dataclass(frozen=True)
class MetricsRead:
    records: list[MetricRecord]  # well-formed, finite
    bad_lines: list[tuple[int, str]]
    truncated: bool
    nonfinite: list[tuple[int, MetricRecord]] = field(default_factory=list)


def read_metrics(path: str | Path) -> MetricsRead:
    """Read a metrics.jsonl file; malformed lines are reported, never silently used."""
    records: list[MetricRecord] = []
    bad: list[tuple[int, str]] = []
    nonfinite: list[tuple[int, MetricRecord]] = []
    raw = Path(path).read_bytes()
    for i, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = MetricRecord.from_dict(json.loads(line))
        except (ValueError, TypeError, UnicodeDecodeError) as e:
            bad.append((i, f"{type(e).__name__}: {e}"))
            continue
        if math.isfinite(rec.value):
            records.append(rec)
        else:
            nonfinite.append((i, rec))
    return MetricsRead(records, bad, bool(raw) and not raw.endswith(b"\n"), nonfinite)


@dataclass
class MetricsReport:
    problems: list[str] = field(default_factory=list)
    skipped_files: list[Path] = field(default_factory=list)
    runs_without_metrics: list[str] = field(default_factory=list)


def _warn(report: MetricsReport, msg: str) -> None:
    report.problems.append(msg)
    warnings.warn(msg, MetricsWarning, stacklevel=4)


def _read_run(path: Path, run_id: str, total_steps: int, report: MetricsReport) -> list[MetricRecord]:
    """The records of one file, by the rule in the module docstring."""
    rep = read_metrics(path)
    bad = list(rep.bad_lines)
    n_lines = len([ln for ln in path.read_bytes().split(b"\n") if ln.strip()])
    if rep.truncated and bad and bad[-1][0] == n_lines:
        line, why = bad.pop()
        _warn(
            report,
            f"{path}: last line {line} is truncated ({why}); dropped it, using the {len(rep.records)} others",
        )
    if rep.nonfinite:
        line, first = rep.nonfinite[0]
        _warn(
            report,
            f"{path}: {len(rep.nonfinite)} record(s) with a non-finite value, kept out of the "
            f"table; first: line {line}, step {first.step}, {first.task}/{first.lang} "
            f"{first.metric} {first.decoding} = {first.value}",
        )
    for i, r in enumerate(rep.records):
        if r.run_id not in (run_id, path.resolve().parent.name):  # an old id's directory (spec.old_runs)
            bad.append((i + 1, f"record of run {r.run_id!r} in {run_id}'s file"))
        elif not 0 <= r.step <= total_steps:
            bad.append((i + 1, f"step {r.step} outside 0..{total_steps}"))
    if bad:
        lines = "; ".join(f"line {n}: {why}" for n, why in bad[:10])
        more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
        _warn(report, f"{path}: {len(bad)} bad line(s), skipping the whole file: {lines}{more}")
        report.skipped_files.append(path)
        return []
    return rep.records


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
    seen_keys: dict[tuple, int] = {}
    for row in rows:
        key = tuple(row[k] for k in _KEY)
        seen_keys[key] = seen_keys.get(key, 0) + 1
    dups = [k for k, c in seen_keys.items() if c > 1]
    if dups:
        raise DuplicateMetricsError(
            f"{len(dups)} (run, step, task, lang, group, metric, decoding) keys "
            f"appear more than once; first: {dups[:3]}. Inspect those metrics.jsonl."
        )
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
