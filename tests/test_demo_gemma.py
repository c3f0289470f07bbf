"""The Gemma ladder of the demo, shrunk: `florenz-scaling run sweeps/demo_gemma.yaml` builds one tiny Florence
tower and encoder for all three TG sizes and a tiny Gemma LM per size, trains, collects and reports."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tiny_sweeps import local_run_args

from florenz_scaling.cli import main
from florenz_scaling.results import read_table

SIZES = ("TG-1.2M", "TG-2.2M", "TG-4.4M")
SHORT = [
    "grid.steps=[4]",
    "train.eval_every=4",
    "train.checkpoint_every=4",
    "train.warmup_steps=1",
    "data.heldout_per_pair=4",
    "fit.bootstrap=10",
    "generate.max_samples=2",
    "generate.examples=1",
    # The ladder's components, built for real but briefly, into this test's own cache.
    "components.vision_steps=4",
    "components.caption_steps=4",
    "components.lm_steps=4",
    "components.warmup_steps=1",
    "components.heldout=4",
]


@pytest.mark.slow
def test_the_gemma_ladder_shares_one_florence_and_runs_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "components"
    monkeypatch.setenv("FLORENZ_COMPONENTS_CACHE", str(cache))
    out = tmp_path / "demo-gemma"
    assert main(local_run_args("demo_gemma.yaml", out, SHORT)) == 0
    said = capsys.readouterr().out
    assert said.rstrip().endswith(f"open {(out / 'report.html').resolve()}")

    # One vision and one florence component for the three sizes, one Gemma LM each.
    kinds = sorted(p.name.split("-")[0] for p in cache.iterdir() if (p / "component.json").is_file())
    assert kinds == ["florence", "gemma", "gemma", "gemma", "vision"]
    pretrained = yaml.safe_load((out / "sweep.yaml").read_text())["pretrained"]
    assert len({pretrained[s]["florence"] for s in SIZES}) == 1
    assert len({pretrained[s]["gemma"] for s in SIZES}) == 3

    table = read_table(out / "results.csv")
    final = table[table["final"].astype(str) == "True"]
    assert set(final["size"]) == set(SIZES) and final["run_id"].nunique() == 3
    assert (final.groupby("run_id").size() == 9).all()  # every (task, language) pair of the default world
    assert set(table["group"]) == {"SC", "UC", "ST", ""}
    cond = read_table(out / "conditioning.csv")
    assert cond["run_id"].nunique() == 3 and len(cond) == 3 * 9
    metrics = read_table(out / "metrics.csv")
    assert set(metrics["size"]) == set(SIZES)
    html = (out / "report.html").read_text()
    assert "UC" in html and "Does the model use its image and prompt?" in html
