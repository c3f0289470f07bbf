"""The report as a browser shows it: Debian's headless Chromium renders it offline, every figure decodes.

Needs /usr/bin/chromium (``scripts/install-chromium`` installs it; the test setup runs that script).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from chromium_page import chromium, skip_without_chromium
from PIL import Image
from plot_sweeps import FIGURE_HEADINGS, plotted_sweep

from florenz_scaling.report import write_report

pytestmark = [pytest.mark.chromium, skip_without_chromium]
# Appended to a copy of the report (never to the report itself, which has no script): records, once the page
# has loaded, whether each <img> decoded and its natural size, where --dump-dom can read it.
PROBE = """<script>window.addEventListener('load', () => {
  const out = document.createElement('pre'); out.id = 'img-probe';
  out.textContent = [...document.images]
    .map(i => `${i.complete}:${i.naturalWidth}x${i.naturalHeight}`).join(' ');
  document.body.appendChild(out);
});</script>"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(plotted_sweep(tmp_path_factory.mktemp("chromium")))


def test_screenshot_shows_the_report(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    proc = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,4000", report.resolve().as_uri())
    assert shot.is_file(), f"no screenshot; chromium said:\n{proc.stderr[-3000:]}"
    with Image.open(shot) as im:
        px = np.asarray(im.convert("RGB")).reshape(-1, 3).astype(np.uint32)
    assert px.shape[0] == 1280 * 4000
    colours = len(np.unique(px[:, 0] << 16 | px[:, 1] << 8 | px[:, 2]))
    not_white = float((px.min(axis=1) < 245).mean())
    # Text and tables alone give a few hundred colours; rendered plots (bands, viridis, antialiasing)
    # thousands.
    assert colours > 2000, f"only {colours} distinct colours: figures did not render"
    assert not_white > 0.05, f"{not_white:.1%} of the page is not white"


def test_dom_has_headings_and_every_image_decoded(report: Path, tmp_path: Path) -> None:
    probe = tmp_path / "probe.html"
    html = report.read_text(encoding="utf-8")
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = chromium(tmp_path, "--dump-dom", probe.as_uri())
    dom = proc.stdout
    assert "<h1>Scaling sweep report: synthetic-test</h1>" in dom, proc.stderr[-3000:]
    for h in ("The answer", "Plan", "Run states", "Fits", "Figures", *FIGURE_HEADINGS):
        assert f">{h}</h" in dom, h
    found = re.search(r'<pre id="img-probe">([^<]*)</pre>', dom)
    assert found, "the probe script did not run"
    images = found.group(1).split()
    assert len(images) == len(FIGURE_HEADINGS)
    for entry in images:
        complete, size = entry.split(":")
        width, height = map(int, size.split("x"))
        assert complete == "true" and width > 500 and height > 300, entry


def test_headline_is_the_first_section_and_names_every_group(report: Path, tmp_path: Path) -> None:
    """As rendered: the first <h2> after the title is the answer, and its section names SC, UC and ST."""
    probe = tmp_path / "first.html"
    script = """<script>window.addEventListener('load', () => {
      const out = document.createElement('pre'); out.id = 'first-probe';
      const first = document.querySelector('h2'); const sec = document.getElementById('headline');
      const cells = [...sec.querySelectorAll('td')].map(td => td.textContent.trim());
      out.textContent = JSON.stringify({first: first.id, groups: cells.filter(c => /^(SC|UC|ST)$/.test(c)),
        top: Math.round(sec.getBoundingClientRect().top),
        figures: Math.round(document.getElementById('figures').getBoundingClientRect().top)});
      document.body.appendChild(out);
    });</script>"""
    html = report.read_text(encoding="utf-8")
    probe.write_text(html.replace("</body>", script + "</body>"), encoding="utf-8")
    dom = chromium(tmp_path, "--dump-dom", probe.as_uri()).stdout
    found = re.search(r'<pre id="first-probe">([^<]*)</pre>', dom)
    assert found, "the probe script did not run"
    import json

    got = json.loads(found.group(1))
    assert got["first"] == "answer"
    assert sorted(got["groups"]) == ["SC", "ST", "UC"]
    assert got["top"] < got["figures"]


def test_example_thumbnails_and_metric_figures_decode(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """A sweep with generation metrics and decoded examples: its metric figures and every 64×64 thumbnail
    of "What the model says" decode in the browser."""
    from plot_sweeps import LARGEST, sweep_with_metrics, write_examples

    from florenz_scaling.plot import plot_sweep

    root = sweep_with_metrics(tmp_path_factory.mktemp("chromium-examples"))
    write_examples(root, LARGEST, 400, evil=True)
    plot_sweep(root, formats=("png",))
    probe = tmp_path / "probe.html"
    html = write_report(root).read_text(encoding="utf-8")
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = chromium(tmp_path, "--dump-dom", probe.as_uri())
    assert ">What the model says</h2>" in proc.stdout, proc.stderr[-3000:]
    assert "<script>alert(1)" not in proc.stdout.split('<pre id="img-probe">')[0]  # escaped, never run
    found = re.search(r'<pre id="img-probe">([^<]*)</pre>', proc.stdout)
    assert found, "the probe script did not run"
    sizes = [e.split(":") for e in found.group(1).split()]
    assert all(c == "true" for c, _ in sizes)
    dims = [tuple(map(int, s.split("x"))) for _, s in sizes]
    assert dims.count((64, 64)) == 12  # two examples for each of the six pairs
    assert sum(w > 500 and h > 300 for w, h in dims) == len(FIGURE_HEADINGS) + 2  # + the two metric figures
