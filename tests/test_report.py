"""The HTML sweep report: self-contained, with the plan, run states, fits next to the paper, every figure."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from test_plot_fixtures import PARTIAL_RUN, SIZES, STEPS, make_sweep, shared_sweep

from florenz_scaling.cli import main
from florenz_scaling.report import run_states, write_report

FIGURE_HEADINGS = (
    "Held-out loss vs training compute", "Predicted loss vs model size at a fixed seen-samples budget",
    "Loss vs seen samples per task and language", "Training curves", "Fit residuals",
    "Compute-optimal model size (Chinchilla form)",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = shutil.copytree(shared_sweep(), tmp_path_factory.mktemp("report") / "sweep")
    path = write_report(root)
    assert path == root / "report.html"
    return path.read_text(encoding="utf-8")


def test_report_has_every_section_and_figure(report: str) -> None:
    assert "<h1>Scaling sweep report: synthetic-test</h1>" in report
    for h2 in ("Plan", "Run states", "Fits", "Figures"):
        assert re.search(rf"<h2 id=\"[a-z]+\">{h2}</h2>", report), h2
    for h3 in FIGURE_HEADINGS:
        assert f"<h3>{h3}</h3>" in report, h3
    imgs = re.findall(r"<img [^>]*src=\"([^\"]*)\"", report)
    assert len(imgs) == len(FIGURE_HEADINGS)
    assert all(src.startswith("data:image/png;base64,iVBOR") for src in imgs)  # PNG signature, base64


def test_report_is_self_contained(report: str) -> None:
    assert not re.search(r"https?://", report)
    assert "<link" not in report and "<script" not in report and "@import" not in report
    assert not re.search(r"(src|href)=\"(?!data:|#)", report)  # only embedded data and in-page anchors


def test_report_tables(report: str) -> None:
    badge = '<span class="state-submitted">submitted</span>'
    assert f'<td class="l">{PARTIAL_RUN}</td><td class="l">{badge}</td>' in report
    plan_rows = re.search(r'id="plan">.*?<tbody>(.*?)</tbody>', report, re.S).group(1)
    assert plan_rows.count("<tr>") == len(SIZES) * len(STEPS)
    # Fits: both OLS laws with the paper's values and intervals next to ours.
    assert "<h3>compute</h3>" in report and "<h3>size-data</h3>" in report and "<h3>chinchilla</h3>" in report
    assert "1.86 (p&lt;0.01)" in report and "[0.92, 2.8]" in report  # Table 2, UC α0
    assert "2.3 (p&lt;0.001)" in report and "[1.95, 2.66]" in report  # Table 3, UC β0
    assert "bootstrap ×" in report


def test_run_states_from_ledger_and_done_markers() -> None:
    states = run_states(shared_sweep()).set_index("run")
    assert len(states) == len(SIZES) * len(STEPS)
    assert states.loc[PARTIAL_RUN, "DONE marker"] == "no"
    assert states.loc[PARTIAL_RUN, "state"] == "submitted"
    done = states.drop(PARTIAL_RUN)
    assert done["DONE marker"].eq("yes").all() and done["state"].eq("done").all()
    assert states.loc["t-1.3m-s200", "job id"] == "100_5"


def test_report_of_a_sweep_without_results(tmp_path: Path) -> None:
    """A sweep just planned (or still running) gets a report too, saying what is missing."""
    root = make_sweep(tmp_path / "sweep", fits=False)
    (root / "results.csv").unlink()
    shutil.rmtree(root / "runs" / "t-10m-s800")
    failed = '{"run_id": "t-0.5m-s100", "event": "failed", "job_id": "7", "time": 1}\n'
    (root / "ledger.jsonl").write_text(failed + '{"run_id": "t-0.5m-s100", "ev')  # a writer killed mid-line
    html = write_report(root).read_text()
    assert "No results collected yet" in html and "No fits yet" in html and "<img" not in html
    states = run_states(root).set_index("run")
    assert states.loc["t-10m-s800", "state"] == "pending"
    assert states.loc["t-0.5m-s100", "state"] == "done"  # DONE wins over a stale failure


def test_cli_report_prints_where_the_report_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_sweep(tmp_path / "sweep", fits=False)
    (root / "results.csv").unlink()
    assert main(["report", str(root)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {(root / 'report.html').resolve()}"
