"""``run``: stages in order, each skipped when its outputs are current; a missing stage fails loudly.

fit, plot and report are other modules' work: here they are replaced by recorders so that only the
pipeline's own logic (ordering, currency checks, launch and wait) is under test.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from tiny_sweeps import TINY_DEMO

import florenz_scaling.fit
import florenz_scaling.plot.sweep
import florenz_scaling.report
from florenz_scaling.cli.run import PipelineError, run_pipeline

TRIVIAL = "florenz_doubles:sleep_run"
OVER = ["grid.steps=[4,8]", "sizes=[T-0.2M]", "launch.array_parallelism=2", "components=null"]


@pytest.fixture
def stages(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def fit_sweep(d: Path, **_: object) -> list[Path]:
        calls.append("fit")
        (Path(d) / "fits").mkdir(exist_ok=True)
        (Path(d) / "fits" / "compute-SC.json").write_text("{}")
        return [Path(d) / "fits" / "compute-SC.json"]

    def plot_sweep(d: Path) -> list[Path]:
        calls.append("plot")
        (Path(d) / "plots").mkdir(exist_ok=True)
        (Path(d) / "plots" / "a.png").write_bytes(b"png")
        return [Path(d) / "plots" / "a.png"]

    def write_report(d: Path) -> Path:
        calls.append("report")
        (Path(d) / "report.html").write_text("<html></html>")
        return Path(d) / "report.html"

    monkeypatch.setattr(florenz_scaling.fit, "fit_sweep", fit_sweep)
    monkeypatch.setattr(florenz_scaling.plot.sweep, "plot_sweep", plot_sweep)
    monkeypatch.setattr(florenz_scaling.report, "write_report", write_report)
    return calls


def test_stages_run_once_then_are_current(repo: Path, tmp_path: Path, stages: list[str]) -> None:
    sweep = TINY_DEMO
    say = io.StringIO()
    report = run_pipeline(sweep, tmp_path, OVER, executor="local", poll_s=0.2, entry=TRIVIAL, say=say)
    assert report == tmp_path / "report.html" and report.exists()
    assert stages == ["fit", "plot", "report"]
    assert "launch: submitted 2 run(s)" in say.getvalue()
    assert (tmp_path / "results.csv").exists() and (tmp_path / "results.parquet").exists()
    time.sleep(0.01)
    say = io.StringIO()
    run_pipeline(sweep, tmp_path, OVER, executor="local", poll_s=0.2, entry=TRIVIAL, say=say)
    text = say.getvalue()
    for line in (
        "plan: current",
        "launch: every run is done",
        "collect: current",
        "fit: current",
        "plot: current",
        "report: current",
    ):
        assert line in text, text
    assert stages == ["fit", "plot", "report"]  # nothing redone
    # A newer input makes its stage and every later one run again.
    later = time.time() + 5
    os.utime(tmp_path / "results.csv", (later, later))
    os.utime(tmp_path / "results.parquet", (later, later))
    run_pipeline(sweep, tmp_path, OVER, executor="local", poll_s=0.2, entry=TRIVIAL, say=io.StringIO())
    assert stages == ["fit", "plot", "report"] * 2


def test_failed_runs_stop_the_pipeline_before_fitting(repo: Path, tmp_path: Path, stages: list[str]) -> None:
    from florenz_scaling.plan import make_plan
    from florenz_scaling.spec import load_sweep

    bad = make_plan(load_sweep(TINY_DEMO, OVER))[0].run_id
    (tmp_path / "runs" / bad).mkdir(parents=True)
    (tmp_path / "runs" / bad / "fail").write_text("broken shard")
    with pytest.raises(PipelineError, match="1 run"):
        run_pipeline(
            TINY_DEMO,
            tmp_path,
            OVER,
            executor="local",
            poll_s=0.2,
            entry=TRIVIAL,
            say=io.StringIO(),
        )
    assert stages == []


def test_missing_stage_fails_loudly(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(florenz_scaling.fit, "fit_sweep")
    with pytest.raises(PipelineError, match=r"fit: cannot import florenz_scaling\.fit\.fit_sweep"):
        run_pipeline(
            TINY_DEMO,
            tmp_path,
            OVER,
            executor="local",
            poll_s=0.2,
            entry=TRIVIAL,
            say=io.StringIO(),
        )
    assert not (tmp_path / "fits").exists()
