"""``run --adaptive``'s loop (``design.adaptive``) with the pipeline replaced by a simulated one: the pilot
identifies the law, every round is recorded, and the budget and the width stop it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import florenz_scaling.design.adaptive as adaptive
from florenz_scaling.design import check_design
from florenz_scaling.plan import make_plan
from florenz_scaling.spec import load_sweep

PAPER = Path(__file__).resolve().parents[1] / "sweeps" / "florenz_paper.yaml"


@pytest.fixture
def simulated(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Each round "trains" its runs instantly: the loss is a known law plus 0.5% noise."""
    rounds: list[Path] = []
    table: dict[str, Any] = {}

    def run_round(path: Path) -> None:
        rounds.append(path)
        plan = make_plan(load_sweep(path))
        rng = np.random.default_rng(len(rounds))
        N = np.array([r.params for r in plan], float)
        D = np.array([r.seen_samples for r in plan], float)
        L = (1.5 + 400 / N**0.34 + 600 / D**0.4) * np.exp(rng.normal(0, 0.005, len(N)))
        table["points"] = pd.DataFrame(
            {
                "N": N,
                "D": D,
                "C": [r.compute_gmacs for r in plan],
                "loss": L,
                "run_id": [r.run_id for r in plan],
            }
        )

    monkeypatch.setattr(adaptive, "_points", lambda out, group, pair, say: table["points"])
    monkeypatch.setattr(adaptive, "_test_run_round", run_round, raising=False)
    return rounds


def test_rounds_until_the_budget_is_spent(tmp_path: Path, simulated: list[Path]) -> None:
    recorded: list[dict[str, Any]] = []
    rows = adaptive.run_adaptive(
        PAPER,
        tmp_path,
        budget=40.0,
        law="chinchilla",
        target="P=2.5e10,S=2e8",
        k=2,
        run_round=adaptive._test_run_round,
        record=recorded.append,
    )
    assert len(rows) >= 2 and rows == recorded
    pilot = load_sweep(simulated[0]).extra_runs
    pts = pd.DataFrame(
        [
            {"N": c.N, "D": c.D, "C": c.C}
            for c in adaptive.pilot_design(adaptive.sweep_pool(load_sweep(PAPER)), "chinchilla")
        ]
    )
    assert len(pilot) == len(pts) and not check_design(pts, "chinchilla")  # the pilot identifies the law
    assert all(r["spent_gpu_h"] <= 40.0 for r in rows)
    assert rows[-1]["stop"].startswith("budget spent")
    assert all(len(r["new"]) <= 2 for r in rows[1:])
    assert rows[-1]["sd"] < rows[0]["sd"]  # buying runs pinned the target down
    lines = (tmp_path / "design" / "rounds.jsonl").read_text().splitlines()
    assert [json.loads(x)["round"] for x in lines] == list(range(len(rows)))


def test_stops_when_the_interval_is_narrow_enough(tmp_path: Path, simulated: list[Path]) -> None:
    rows = adaptive.run_adaptive(
        PAPER,
        tmp_path,
        budget=1e6,
        law="chinchilla",
        target="P=2.5e10,S=2e8",
        width=10.0,
        run_round=adaptive._test_run_round,
    )
    assert len(rows) == 1 and rows[0]["stop"].startswith("target interval")


def test_a_pilot_over_budget_is_refused(tmp_path: Path, simulated: list[Path]) -> None:
    with pytest.raises(adaptive.DesignError, match="pilot"):
        adaptive.run_adaptive(PAPER, tmp_path, budget=0.1, run_round=adaptive._test_run_round)


def test_run_adaptive_needs_a_budget(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from florenz_scaling.cli import main

    assert main(["run", str(PAPER), "--out", str(tmp_path), "--adaptive"]) == 2
    assert "--budget" in capsys.readouterr().err
