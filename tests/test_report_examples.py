"""The report's generation parts: "What the model says" (decoded examples with thumbnails) and the metric fits
next to the loss fits. examples.jsonl is a received file: every text is escaped, images are checked PNGs."""

from __future__ import annotations

import base64
import io
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from plot_sweeps import LARGEST, sweep_with_metrics, write_examples

from florenz_scaling.files import SweepDir
from florenz_scaling.plot import plot_sweep
from florenz_scaling.report import examples_section, metric_fits_table, write_report
from florenz_scaling.report.examples import pick_examples, thumbnail


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared sweep with metrics.csv, its metric fits, examples in two runs and the figures drawn."""
    root = sweep_with_metrics(tmp_path_factory.mktemp("report-examples"))
    write_examples(root, LARGEST, 400, evil=True)
    write_examples(root, "t-0.5m-s100", 100)
    plot_sweep(root, formats=("png",))
    return root


@pytest.fixture(scope="module")
def report(sweep: Path) -> str:
    return write_report(sweep).read_text(encoding="utf-8")


def _section(report: str) -> str:
    return report.split('<h2 id="examples">', 1)[1].split("<details>", 1)[0]


def test_examples_two_per_pair_from_the_largest_run_with_and_without_prefix(report: str) -> None:
    body = _section(report)
    rows = re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1])
    assert len(rows) == 2 * 6  # six pairs, two examples each
    assert all(f">{LARGEST}<" in r for r in rows)
    caption_es = [r for r in rows if "caption · es" in r]
    assert [">beam4<" in caption_es[0], ">beam4+prefix<" in caption_es[1]] == [True, True]
    translate = [r for r in rows if "translate · zh" in r]
    assert all(">beam4<" in r for r in translate) and "ref t-10m-s400 0" in translate[0]
    assert "ref t-10m-s400 1" in translate[1]  # two different samples
    assert body.count('<img class="thumb"') == 12


def test_examples_are_escaped_and_images_are_real_pngs(report: str) -> None:
    body = _section(report)
    assert "<script>" not in report and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&amp; more" in body
    thumbs = re.findall(r'<img class="thumb" alt="held-out image" src="data:image/png;base64,([^"]+)"', body)
    assert len(thumbs) == 12
    for src in thumbs:
        with Image.open(io.BytesIO(base64.b64decode(src))) as im:
            assert im.size == (64, 64)
    assert thumbnail('not base64 " onerror=alert(1)') == '<span class="muted">no image</span>'
    gif = base64.b64encode(b"GIF89a" + b"\0" * 20).decode()
    assert "no image" in thumbnail(gif) and "no image" in thumbnail(None)
    assert "no image" in thumbnail(base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 40_000).decode())


def test_damaged_examples_file_is_reported_not_fatal(sweep: Path, tmp_path: Path) -> None:
    root = shutil.copytree(sweep, tmp_path / "sweep")
    path = root / "runs" / LARGEST / "examples.jsonl"
    path.write_text(path.read_text() + '{"task": "caption", "la\n[1, 2]\n')
    html = "".join(examples_section(SweepDir(root), None))
    assert f"Damaged examples files: {LARGEST} (2 bad line(s) skipped)" in html
    for run in ("t-0.5m-s100", LARGEST):
        (root / "runs" / run / "examples.jsonl").unlink()
    html = write_report(root).read_text()
    assert "No decoded examples" in html and '<img class="thumb"' not in html


def test_pick_examples_without_prefix_decodings() -> None:
    recs = [
        {"task": "translate", "lang": "zh", "decoding": d, "index": i}
        for d in ("greedy", "beam4")
        for i in range(3)
    ]
    picked = pick_examples(recs)
    assert [(r["decoding"], r["index"]) for r in picked] == [("beam4", 0), ("beam4", 1)]
    assert pick_examples([]) == []


def test_metric_fits_are_next_to_the_loss_fits(report: str, sweep: Path) -> None:
    fits = report.split('<h2 id="fits">', 1)[1].split('<h2 id="conditioning">', 1)[0]
    heading = "<h3>Generation metrics: direct power law vs two-stage map</h3>"
    assert fits.index("<h3>compute</h3>") < fits.index(heading)
    assert "<h4>cider</h4>" in fits and "<h4>attr_acc</h4>" in fits and "rollout |err| two-stage" in fits
    assert "two-stage</td>" in fits or "direct</td>" in fits
    from florenz_scaling.fit import load_metric_fits

    table = metric_fits_table(load_metric_fits(sweep))
    assert len(table) == 2 * (4 + 4 + 2) * 2  # metrics × (UC, SC: 4 decodings; ST: 2) × axes
    assert list(table["group"].unique()) == ["UC", "ST", "SC"]
    assert set(table["extrapolates better"]) <= {"direct", "two-stage", ""}


def test_metric_figures_are_embedded_under_their_claims(report: str) -> None:
    for name in ("metric_vs_size", "metric_vs_compute"):
        fig = report.split(f'<figure id="fig-{name}">', 1)[1].split("</figure>", 1)[0]
        assert '<p class="claim">Claim: ' in fig and 'src="data:image/png;base64,iVBOR' in fig
    assert report.index('id="figures"') < report.index('id="examples"') < report.index('id="plan"')
    assert not re.search(r"https?://", report) and "<script" not in report
