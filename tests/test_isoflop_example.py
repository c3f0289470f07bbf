"""``sweeps/budget_example.yaml`` end to end, shortened: real training (local executor) of a compute-budget
sweep, then the IsoFLOP analysis, its two figures and its headline in the report as Chromium renders it, and
``plan --next-budget`` on the finished directory.

Shortened by ``-o`` overrides of the same file: three sizes from T-0.2M at one budget of 50 GMACs (about a
minute of training on 2 cores). Measured on this ladder (batch 16, lr 2e-3): at 50 GMACs the final loss
rises with size from T-0.2M up (T-0.2M 1.59, T-0.5M 2.08, T-1.3M 3.70), the best size being ~0.05M, so the
minimum lies below these sizes; the analysis must say so and leave the budget out, and ``--next-budget``
must refuse rather than extrapolate from nothing. The full example brackets every budget by running the
sizes below T-0.2M as well (see the README), which is what makes it take minutes rather than one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from chromium_page import chromium, skip_without_chromium

from florenz_scaling.cli import main
from florenz_scaling.fit import load_isoflop
from florenz_scaling.plan import make_plan
from florenz_scaling.spec import load_sweep

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "sweeps" / "budget_example.yaml"
SHORT = [
    "sizes=[T-0.2M,T-0.5M,T-1.3M]",
    "budget.compute_gmacs=[50.0]",
    "budget.tokens_per_param=null",
    "train.eval_every=100",
    "train.checkpoint_every=1000",
    "train.threads=1",
    "generate.enabled=false",
    "data.heldout_per_pair=16",
    "fit.laws=[chinchilla]",
    "fit.bootstrap=50",
]
PROBE = """<script>window.addEventListener('load', () => {
  const out = document.createElement('pre'); out.id = 'iso-probe';
  const imgs = [...document.querySelectorAll('figure img, img')];
  out.textContent = JSON.stringify({
    headline: [...document.querySelectorAll('.headline-isoflop')].map(p => p.textContent),
    images: imgs.map(i => [i.alt || '', i.complete, i.naturalWidth, i.naturalHeight]),
    headings: [...document.querySelectorAll('h2, h3')].map(h => h.textContent.trim())});
  document.body.appendChild(out);
});</script>"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("budget-example") / "sweep"
    args = ["run", str(EXAMPLE), "--out", str(out), "--executor", "local", "--poll", "1"]
    for o in SHORT:
        args += ["-o", o]
    assert main(args) == 0
    return out


def test_run_flags_a_minimum_below_the_sizes(sweep: Path) -> None:
    (res,) = [r for r in load_isoflop(sweep) if r.group == "SC"]
    (b,) = res.budgets
    assert b.C == 50.0 and b.n_runs == 3 and b.fitted and b.coef[2] > 0  # a convex profile, fitted
    plan = make_plan(load_sweep(sweep / "sweep.yaml"))
    assert sorted(b.sizes) == sorted(float(r.params) for r in plan)
    # Its vertex lies below the smallest size: flagged, and no exponent is made from it.
    assert b.N_opt < b.sizes[0] and not b.bracketed and not b.used
    assert b.note == "minimum not bracketed: N_opt below the smallest size sampled"
    assert "approach2" not in res.exponents and res.headline().startswith(
        "compute-optimal N grows as C^a: a = n/a (approach 2)"
    )
    assert (sweep / "plots" / "isoflop_profiles.png").is_file()
    assert (sweep / "plots" / "isoflop_approaches.png").is_file()


@pytest.mark.chromium
@skip_without_chromium
def test_report_shows_isoflop_figures_and_headline(sweep: Path, tmp_path: Path) -> None:
    import json

    html = (sweep / "report.html").read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = chromium(tmp_path, "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="iso-probe">([^<]*)</pre>', proc.stdout)
    assert found, f"the probe script did not run; chromium said:\n{proc.stderr[-3000:]}"
    got = json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    headlines = {r.group: r.headline() for r in load_isoflop(sweep)}
    assert sorted(got["headline"]) == sorted(headlines.values())
    assert any(h.startswith("compute-optimal N grows as C^a: a = ") for h in got["headline"])
    for heading in (
        "Compute-optimal allocation (budget sweep)",
        "IsoFLOP profiles: the best size at each compute budget",
        "Compute-optimal N and D vs compute, three ways",
    ):
        assert heading in got["headings"], (heading, got["headings"])
    assert got["images"] and all(c and w > 500 and h > 300 for _, c, w, h in got["images"]), got["images"]


def test_next_budget_refuses_without_an_exponent(sweep: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "next.yaml"
    assert main(["plan", str(sweep), "--next-budget", "400", "--sizes", "3", "--next-out", str(out)]) == 1
    assert "no group has an approach-2 or approach-3 exponent" in capsys.readouterr().err
    assert not out.exists()
