"""conditioning.csv carries the image- and the prompt-shuffled loss separately (and old sweeps' both-at-once
probe as ``shuffled_loss``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from tiny_sweeps import TINY_DEMO

from florenz_scaling.plan import make_plan, write_plan
from florenz_scaling.results import CONDITIONING_COLUMNS, LossRecord, collect
from florenz_scaling.spec import load_sweep

PAIRS = (("caption", "en", "SC"), ("translate", "zh", "ST"))


def _line(run, kind: str, task: str, lang: str, group: str, loss: float) -> str:
    return LossRecord(
        run.run_id,
        run.run.steps,
        run.seen_samples,
        kind,
        task,
        lang,
        group,
        loss,
        8,  # type: ignore[arg-type]
        90,
    ).to_json()


@pytest.fixture
def sweep(repo: Path, tmp_path: Path):
    spec = load_sweep(TINY_DEMO, ["grid.steps=[4]", "sizes=[T-0.5M]"])
    plan = make_plan(spec)
    write_plan(spec, plan, tmp_path)
    return tmp_path, plan[0]


def _write(out: Path, run, kinds: dict[str, float]) -> None:
    d = out / "runs" / run.run_id
    d.mkdir(parents=True)
    lines = []
    for i, (task, lang, group) in enumerate(PAIRS):
        lines.append(_line(run, "eval", task, lang, group, 1.0 + i))
        lines += [_line(run, kind, task, lang, group, 1.0 + i + gap) for kind, gap in kinds.items()]
    (d / "losses.jsonl").write_text("\n".join(lines) + "\n")
    (d / "DONE").write_text("{}\n")


def test_image_and_prompt_probes_get_their_own_columns(sweep) -> None:
    out, run = sweep
    _write(out, run, {"shuffled_image": 0.5, "shuffled_prompt": 2.0})
    table = collect(out)
    assert set(table.group) == {"SC", "ST"} and len(table) == 2, "probes stay out of the long table"
    cond = pd.read_csv(out / "conditioning.csv")
    assert tuple(cond.columns) == CONDITIONING_COLUMNS and len(cond) == 2
    for _, row in cond.iterrows():
        assert row.image_shuffled_loss == pytest.approx(row.loss + 0.5)
        assert row.prompt_shuffled_loss == pytest.approx(row.loss + 2.0)
        assert math.isnan(row.shuffled_loss)


def test_old_both_shuffled_records_still_read(sweep) -> None:
    out, run = sweep
    _write(out, run, {"shuffled": 0.7})
    collect(out)
    cond = pd.read_csv(out / "conditioning.csv")
    assert (cond.shuffled_loss - cond.loss).round(6).eq(0.7).all()
    assert cond.image_shuffled_loss.isna().all() and cond.prompt_shuffled_loss.isna().all()


def test_records_accept_the_new_kinds() -> None:
    for kind in ("shuffled_image", "shuffled_prompt", "shuffled"):
        d = json.loads(LossRecord("r", 1, 1, kind, "caption", "en", "SC", 1.0, 1, 1).to_json())  # type: ignore[arg-type]
        assert LossRecord.from_dict(d).kind == kind
    with pytest.raises(ValueError, match="unknown kind"):
        LossRecord.from_dict({**d, "kind": "shuffled_both"})
