"""The README's main job, shrunk: `florenz-scaling run sweeps/demo.yaml` really plans, trains (DeepSpeed on
CPU, local executor), collects, fits, plots and writes the report, with nothing replaced by a stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_sweeps import local_run_args

from florenz_scaling.cli import main
from florenz_scaling.results import read_table

SHORT = [
    "grid.steps=[4, 8]",
    "train.eval_every=4",
    "train.checkpoint_every=4",
    "train.warmup_steps=1",
    "data.heldout_per_pair=4",
    "fit.bootstrap=10",
    "generate.max_samples=4",
    "generate.primary_samples=4",
    # The demo's pretrained components, built for real but briefly, into this test's own cache.
    "components.vision_steps=10",
    "components.projector_steps=5",
    "components.caption_steps=10",
    "components.warmup_steps=2",
    "components.heldout=8",
]


@pytest.mark.slow
def test_demo_sweep_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLORENZ_COMPONENTS_CACHE", str(tmp_path / "components"))
    out = tmp_path / "demo"
    args = local_run_args("demo.yaml", out, SHORT)
    assert main(args) == 0
    said = capsys.readouterr().out
    assert said.rstrip().endswith(f"open {(out / 'report.html').resolve()}")  # the README promises this
    kinds = [d.name.split("-")[0] for d in (tmp_path / "components").iterdir() if not d.name.startswith(".")]
    assert set(kinds) == {"tower", "vision", "florence"} and kinds.count("tower") == 1  # one for the ladder

    table = read_table(out / "results.csv")
    final = table[table["final"].astype(str) == "True"]
    assert final["run_id"].nunique() == 6  # 3 sizes × 2 step budgets
    assert (final.groupby("run_id").size() == 9).all()  # every (task, language) pair of the default world
    assert set(table["group"]) == {"SC", "UC", "ST", ""}  # en→fr/ru/de translation is in no group

    fits = {p.name for p in (out / "fits").glob("*.json")}
    # saturating-compute fits the Pareto frontier, which 6 runs may leave too short for 3 coefficients.
    for law in ("compute", "size-data", "chinchilla"):
        assert {f"{law}-SC.json", f"{law}-UC.json", f"{law}-ST.json"} <= fits
    assert not any(name.endswith("-.json") for name in fits)
    plots = {p.name for p in (out / "plots").iterdir()}
    assert {"loss_vs_compute.png", "loss_vs_compute.svg", "training_curves.png"} <= plots
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "UC" in html
    cond = read_table(out / "conditioning.csv")  # every finished run probed once, at its last step
    assert cond["run_id"].nunique() == 6 and len(cond) == 6 * 9
    assert "Does the model use its image and prompt?" in html

    # Running again finds every stage current and trains nothing.
    assert main(args) == 0
    again = capsys.readouterr().out
    for line in ("launch: every run is done", "collect: current", "fit: current", "report: current"):
        assert line in again, again
