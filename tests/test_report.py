"""The HTML sweep report: self-contained, with the plan, run states, fits next to the paper, every figure.

The report is built from files only: its figures are the PNGs ``florenz-scaling plot`` wrote and listed in
plots/index.json, never redrawn.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from plot_sweeps import FIGURE_HEADINGS, PARTIAL_RUN, SIZES, STEPS, make_sweep, plotted_sweep, shared_sweep

from florenz_scaling.cli import main
from florenz_scaling.report import run_states, write_report


@pytest.fixture(scope="module")
def plotted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return plotted_sweep(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def report(plotted: Path) -> str:
    root = plotted
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


def test_report_embeds_the_files_plot_wrote_in_index_order(plotted: Path, report: str) -> None:
    index = json.loads((plotted / "plots" / "index.json").read_text())["figures"]
    imgs = re.findall(r"<img [^>]*src=\"data:image/png;base64,([^\"]*)\"", report)
    files = [(plotted / "plots" / f["files"][0]).read_bytes() for f in index]
    assert [base64.b64decode(s) for s in imgs] == files
    assert re.findall(r"<h3>([^<]*)</h3></?p", report)[-len(index) :] == [f["title"] for f in index]
    assert "older than" not in report


def test_report_reads_files_only_and_never_imports_plot(plotted: Path, tmp_path: Path) -> None:
    root = shutil.copytree(plotted, tmp_path / "sweep")
    code = (
        "import sys; from florenz_scaling.report import write_report; write_report(sys.argv[1]); "
        "print(sorted(m for m in sys.modules if m.startswith(('matplotlib', 'florenz_scaling.plot'))))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert (root / "report.html").read_text().count("<img ") == len(FIGURE_HEADINGS)


def test_report_says_when_the_sweep_was_not_plotted(plotted: Path, tmp_path: Path) -> None:
    root = shutil.copytree(plotted, tmp_path / "sweep")
    (root / "plots" / "index.json").unlink()  # plotted by a version that wrote no index
    html = write_report(root).read_text()
    assert "No plots/index.json" in html and "florenz-scaling plot DIR" in html and "<img" not in html
    shutil.rmtree(root / "plots")
    html = write_report(root).read_text()
    assert "No plots/ directory" in html and "florenz-scaling plot DIR" in html and "<img" not in html


def test_report_flags_figures_older_than_the_fits(plotted: Path, tmp_path: Path) -> None:
    root = shutil.copytree(plotted, tmp_path / "sweep")
    index = root / "plots" / "index.json"
    os.utime(index, (1e9, 1e9))
    (root / "plots" / "fit_residuals.png").unlink()
    html = write_report(root).read_text()
    assert "The figures are older than results.csv or the fits" in html
    assert html.count("<img ") == len(FIGURE_HEADINGS) - 1 and "No PNG of this figure" in html


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
    assert "<h3>compute</h3>" in report and "<h3>size-data</h3>" in report
    # The Chinchilla fits drive E to 0 on this grid: not identifiable, so named with the reason only.
    assert "<h3>chinchilla</h3>" not in report and "<h3>Not identifiable (" in report
    assert "chinchilla · SC: not identifiable: " in report and "E at its lower bound" in report
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


def test_cli_report_alone_on_a_plotted_sweep(
    plotted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = shutil.copytree(plotted, tmp_path / "sweep")
    (root / "report.html").unlink(missing_ok=True)
    assert main(["report", str(root)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {(root / 'report.html').resolve()}"
    assert (root / "report.html").read_text().count("<img ") == len(FIGURE_HEADINGS)


def test_cli_report_prints_where_the_report_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_sweep(tmp_path / "sweep", fits=False)
    (root / "results.csv").unlink()
    assert main(["report", str(root)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {(root / 'report.html').resolve()}"


def test_every_cell_from_a_received_file_is_escaped(tmp_path: Path) -> None:
    root = make_sweep(tmp_path / "sweep", fits=False)
    plan = (root / "plan.csv").read_text().splitlines()
    evil = "<script>alert(1)</script>"
    plan = [plan[0] + ",_html_note,<b>x</b>"] + [line + f",{evil},{evil}" for line in plan[1:]]
    (root / "plan.csv").write_text("\n".join(plan) + "\n")
    html = write_report(root).read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>x</b>" not in html and "_html_note" in html


def test_report_opens_with_the_answer(report: str) -> None:
    """The first section is the headline: every group's compute exponent next to the paper's, its verdict,
    the shared-vs-separate test, the gap law; the not identifiable fits are named there, not shown."""
    body = report.split("<body>", 1)[1]
    first_h2 = re.search(r"<h2 id=\"([a-z-]+)\">", body).group(1)
    assert first_h2 == "answer"
    answer = body.split('<section id="headline">', 1)[1].split("</section>", 1)[0]
    for g in ("SC", "UC", "ST"):
        assert f'<td class="l">{g}</td>' in answer, g
    assert "-0.15 [-0.26, -0.04]" in answer  # the paper's UC α1, Table 2
    assert "reliable" in answer and "Shared vs separate exponents (compute" in answer and "F-test" in answer
    assert "Gap law UC − SC" in answer
    assert "Not shown:" in answer and "chinchilla · UC" in answer
    # Plan, run states and the full tables come after the figures, folded.
    assert body.index('id="figures"') < body.index('<details><summary><h2 id="plan">')
    assert body.index('<details><summary><h2 id="plan">') < body.index('<details><summary><h2 id="fits">')
    assert "Claim: held-out loss falls as a power of compute" in body


def test_headline_reads_both_conditioning_layouts_and_metrics(plotted: Path, tmp_path: Path) -> None:
    import pandas as pd

    from florenz_scaling.fit import sweep_headline

    root = shutil.copytree(plotted, tmp_path / "sweep")
    rows = []
    for size, params in (("T-0.5M", 0.52e6), ("T-10M", 10.1e6)):
        for group, lang in (("SC", "en"), ("UC", "es")):
            rows.append(
                {
                    "run_id": f"{size.lower()}-s400",
                    "size": size,
                    "params": params,
                    "total_steps": 400,
                    "step": 400,
                    "seen_samples": 12800,
                    "task": "caption",
                    "lang": lang,
                    "group": group,
                    "loss": 4.0,
                    "samples": 64,
                    "partial": False,
                    "image_shuffled_loss": 4.4,
                    "prompt_shuffled_loss": 4.04,
                    "shuffled_loss": "",
                }
            )
    pd.DataFrame(rows).to_csv(root / "conditioning.csv", index=False)
    metrics = [
        {
            "run_id": r["run_id"],
            "size": r["size"],
            "params": r["params"],
            "step": 400,
            "seen_samples": 12800,
            "task": "caption",
            "lang": r["lang"],
            "group": r["group"],
            "metric": "attribute_accuracy",
            "decoding": "greedy",
            "value": 0.2 if r["params"] < 1e6 else 0.6,
        }
        for r in rows
    ]
    pd.DataFrame(metrics).to_csv(root / "metrics.csv", index=False)
    h = sweep_headline(root)
    uc = next(c for c in h["conditioning"] if c["group"] == "UC")
    assert uc["size"] == "T-10M" and uc["image"] == pytest.approx(10.0) and uc["prompt"] == pytest.approx(1.0)
    assert "both" not in uc
    (e,) = h["emergence"]
    assert e["values"] == [0.2, 0.6] and e["reference_at_largest"] == 0.6
    # metrics.csv from before intervals: no interval, so no claim of a rise, and the answer says why
    assert e["answer"] == "cannot tell" and not e["emerges"] and "no intervals recorded" in e["why"]
    html = write_report(root).read_text()
    assert "image shuffled: +10%" in html and "rise with size? cannot tell" in html
    old = pd.DataFrame(rows).drop(columns=["image_shuffled_loss", "prompt_shuffled_loss"])
    old["shuffled_loss"] = 4.2
    old.to_csv(root / "conditioning.csv", index=False)
    (root / "metrics.csv").unlink()
    h = sweep_headline(root)
    assert h["emergence"] == [] and h["conditioning"][0]["both"] == pytest.approx(5.0)
    assert "No emergence metrics" in write_report(root).read_text()
