"""metrics.jsonl -> metrics.csv: typed records, the same corruption rules as results.csv."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import pytest

from florenz_scaling import spec
from florenz_scaling.files import SweepDir
from florenz_scaling.results import (
    METRIC_COLUMNS,
    DuplicateMetricsError,
    MetricRecord,
    MetricsWarning,
    collect_metrics,
    collect_metrics_table,
    read_metrics,
)


def make_run(root: Path, steps: int, size: str = "T-0.2M") -> str:
    run = spec.RunSpec(
        sweep="s",
        size=size,
        steps=steps,
        global_batch=8,
        train=spec.TrainSpec(micro_batch=8),
        data=spec.DataSpec(),
    )
    rd = SweepDir(root).run(run.run_id)
    rd.root.mkdir(parents=True)
    spec.dump_yaml(run, rd.run_yaml)
    return run.run_id


def record(run_id: str, step: int, metric: str = "bleu", value: float = 12.5, **kw: object) -> dict:
    return {
        "run_id": run_id,
        "step": step,
        "seen_samples": step * 8,
        "task": "caption",
        "lang": "es",
        "group": "UC",
        "metric": metric,
        "decoding": "beam4+prefix",
        "value": value,
        "n": 32,
        **kw,
    }


def write(root: Path, run_id: str, lines: list[str]) -> Path:
    path = SweepDir(root).run(run_id).metrics
    path.write_text("".join(lines))
    return path


def test_collects_every_run_into_metrics_csv(tmp_path: Path) -> None:
    a, b = make_run(tmp_path, 4), make_run(tmp_path, 8)
    make_run(tmp_path, 2, "T-0.5M")  # no metrics
    write(tmp_path, a, [json.dumps(record(a, 4, m)) + "\n" for m in ("bleu", "cider")])
    write(tmp_path, b, [json.dumps(record(b, s)) + "\n" for s in (4, 8)])
    (SweepDir(tmp_path).run(b).done).write_text("{}")
    rows, report = collect_metrics(tmp_path)
    assert len(rows) == 4 and not report.problems and len(report.runs_without_metrics) == 1
    with open(SweepDir(tmp_path).metrics_csv, newline="") as fh:
        table = list(csv.DictReader(fh))
    assert tuple(table[0])[: len(METRIC_COLUMNS)] == METRIC_COLUMNS
    final = [r for r in rows if r["run_id"] == b]
    assert [(r["step"], r["final"], r["partial"]) for r in final] == [(4, False, False), (8, True, False)]
    assert all(r["partial"] for r in rows if r["run_id"] == a)
    assert final[1]["seen_samples"] == 64 and final[1]["compute_gmacs"] > final[0]["compute_gmacs"] > 0


def test_a_truncated_last_line_is_dropped_with_a_warning(tmp_path: Path) -> None:
    a = make_run(tmp_path, 4)
    write(tmp_path, a, [json.dumps(record(a, 4)) + "\n", json.dumps(record(a, 4, "chrf"))[:30]])
    with pytest.warns(MetricsWarning, match="truncated"):
        rows, _ = collect_metrics_table(tmp_path)
    assert [r["metric"] for r in rows] == ["bleu"]


def test_a_malformed_file_is_skipped_and_reported(tmp_path: Path) -> None:
    a, b = make_run(tmp_path, 4), make_run(tmp_path, 8)
    lines = [json.dumps(record(a, 4)) + "\n", "not json\n", json.dumps(record(a, 4, "x")) + "\n"]
    bad = write(tmp_path, a, lines)
    write(tmp_path, b, [json.dumps(record(b, 8)) + "\n"])
    with pytest.warns(MetricsWarning, match="skipping the whole file"):
        rows, report = collect_metrics_table(tmp_path)
    assert {r["run_id"] for r in rows} == {b} and report.skipped_files == [bad]
    for wrong in (record(b, 9), record(a, 4), {**record(b, 8), "value": "high"}, {"run_id": b}):
        write(tmp_path, b, [json.dumps(wrong) + "\n"])  # past the end, another run's, not a number, lacking
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            rows, report = collect_metrics_table(tmp_path)
        assert not rows and SweepDir(tmp_path).run(b).metrics in report.skipped_files


def test_non_finite_values_are_kept_out_and_reported(tmp_path: Path) -> None:
    a = make_run(tmp_path, 4)
    write(tmp_path, a, [json.dumps(r) + "\n" for r in (record(a, 4), record(a, 4, "cider", float("nan")))])
    assert len(read_metrics(SweepDir(tmp_path).run(a).metrics).nonfinite) == 1
    with pytest.warns(MetricsWarning, match="non-finite"):
        rows, report = collect_metrics_table(tmp_path)
    assert [r["metric"] for r in rows] == ["bleu"] and "cider" in report.problems[0]


def test_duplicated_records_are_an_error(tmp_path: Path) -> None:
    a = make_run(tmp_path, 4)
    write(tmp_path, a, [json.dumps(record(a, 4)) + "\n"] * 2)
    with pytest.raises(DuplicateMetricsError):
        collect_metrics(tmp_path)
    assert not SweepDir(tmp_path).metrics_csv.exists()


def test_record_types_are_checked() -> None:
    assert MetricRecord.from_dict(record("r", 1)).value == 12.5
    with pytest.raises(ValueError):
        MetricRecord.from_dict({**record("r", 1), "n": True})


def test_metrics_are_grouped_by_the_sweeps_groups_now(tmp_path: Path) -> None:
    a = make_run(tmp_path, 4)
    write(tmp_path, a, [json.dumps(record(a, 4)) + "\n"])  # written under UC
    SweepDir(tmp_path).sweep_yaml.write_text(
        "data:\n  groups:\n    A: [[caption, es]]\n    B: [[caption, es]]\n"
    )
    rows, _ = collect_metrics(tmp_path)
    assert [(r["group"], r["value"]) for r in rows] == [("A", 12.5), ("B", 12.5)]
