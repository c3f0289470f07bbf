"""The report's "Design rounds" section: shown when design/rounds.jsonl exists, escaped, absent otherwise."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from plot_sweeps import shared_sweep

import florenz_scaling.design.adaptive as adaptive
from florenz_scaling.files import SweepDir
from florenz_scaling.report import read_rounds, rounds_section, write_report
from florenz_scaling.report.rounds import ROUNDS


def _round(r: int, new: list[str], spent: float, estimate: float, sd: float, stop: str | None) -> dict:
    """One line as ``design.adaptive.run_adaptive`` writes it."""
    return {
        "round": r,
        "time": 1.7e9 + r,
        "law": "chinchilla",
        "target": "L(N=2.5e+10,D=2e+08)",
        "estimate": estimate,
        "sd": sd,
        "interval": [estimate - 1.96 * sd, estimate + 1.96 * sd],
        "width": 2 * 1.96 * sd,
        "bought": [f"run{i}" for i in range(3 + r)],
        "new": new,
        "spent_gpu_h": spent,
        "budget_gpu_h": 40.0,
        "next": [] if stop else ["run9"],
        "stop": stop,
    }


def _sweep(tmp_path: Path, lines: list[str]) -> Path:
    root = shutil.copytree(shared_sweep(), tmp_path / "sweep")
    path = root.joinpath(*ROUNDS)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    return root


def test_the_path_is_the_one_the_loop_writes() -> None:
    assert ROUNDS == ("design", adaptive.ROUNDS_FILE)


def test_report_shows_every_round(tmp_path: Path) -> None:
    rows = [
        _round(0, ["run0", "run1", "run2"], 3.5, 2.41, 0.05, None),
        _round(
            1, ["run3"], 9.25, 2.37, 0.02, "budget spent (9.25 of 40 GPU-h: no candidate fits what is left)"
        ),
    ]
    root = _sweep(tmp_path, [json.dumps(r) for r in rows])
    html = write_report(root).read_text(encoding="utf-8")
    assert '<h2 id="rounds">Design rounds</h2>' in html and '<a href="#rounds">Design rounds</a>' in html
    section = html[html.index('id="rounds"') : html.index('id="plan"')]
    for text in ("run0, run1, run2", "9.25", "2.37", "[2.3308, 2.4092]", "0.0784", "budget spent", "run9"):
        assert text in section, text
    assert section.count("<tr>") == 3  # the header and one line per round


def test_text_from_the_file_is_escaped_and_bad_lines_are_skipped(tmp_path: Path) -> None:
    evil = _round(0, ["<script>alert(1)</script>"], 1.0, 2.0, 0.1, "<b>stop</b>")
    evil["target"] = '"><img src=x onerror=alert(1)>'
    root = _sweep(tmp_path, [json.dumps(evil), '{"round": 1, "estim', "[1, 2]"])
    rows, bad = read_rounds(SweepDir(root))  # type: ignore[misc]
    assert len(rows) == 1 and bad == 2
    html = "".join(rounds_section(SweepDir(root)))
    assert "<script>" not in html and "<img" not in html and "<b>stop" not in html
    assert "&lt;script&gt;" in html and "2 unreadable line(s)" in html


def test_no_section_without_rounds(tmp_path: Path) -> None:
    root = shutil.copytree(shared_sweep(), tmp_path / "sweep")
    assert read_rounds(SweepDir(root)) is None and rounds_section(SweepDir(root)) == []
    html = write_report(root).read_text(encoding="utf-8")
    assert "Design rounds" not in html


def test_the_loops_rounds_reach_the_report(tmp_path: Path, monkeypatch) -> None:
    """The rows ``run_adaptive`` writes (with a simulated pipeline) are the rows the report shows."""
    import numpy as np
    import pandas as pd

    from florenz_scaling.plan import make_plan
    from florenz_scaling.spec import load_sweep

    table: dict[str, pd.DataFrame] = {}

    def run_round(path: Path) -> None:
        plan = make_plan(load_sweep(path))
        N = np.array([r.params for r in plan], float)
        D = np.array([r.seen_samples for r in plan], float)
        L = (1.5 + 400 / N**0.34 + 600 / D**0.4) * np.exp(
            np.random.default_rng(len(N)).normal(0, 0.005, len(N))
        )
        table["p"] = pd.DataFrame({"N": N, "D": D, "C": [r.compute_gmacs for r in plan], "loss": L})

    monkeypatch.setattr(adaptive, "_points", lambda out, group, pair, say: table["p"])
    paper = Path(__file__).resolve().parents[1] / "sweeps" / "florenz_paper.yaml"
    root = shutil.copytree(shared_sweep(), tmp_path / "sweep")
    rows = adaptive.run_adaptive(
        paper, root, budget=25.0, law="chinchilla", target="P=2.5e10,S=2e8", run_round=run_round
    )
    html = "".join(rounds_section(SweepDir(root)))
    assert html.count("<tr>") == len(rows) + 1
    assert f"{rows[-1]['spent_gpu_h']:.4g}" in html and f"{rows[-1]['estimate']:.5g}" in html
