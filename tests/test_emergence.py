"""Emergence with its uncertainty (fit.emergence): simulated per-sample scores with known effects.

Each size's held-out samples are simulated (exact match per sample, Bernoulli with a known rate), scored and
given their bootstrap interval by the trainer's own code (train.intervals), and written as metrics.csv rows;
the answer must say "yes" for a clear rise, "cannot tell" for none, and cover the true slope.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chromium_page import chromium, skip_without_chromium

from florenz_scaling.fit.emergence import emergence, image_gap, prefix_effect
from florenz_scaling.fit.headline import answer_lines, split_emergence
from florenz_scaling.train.intervals import percentile_interval, resample_weights

SIZES = (("T-0.5M", 0.5e6), ("T-1.3M", 1.3e6), ("T-3.7M", 3.7e6))


def _rows(rate: dict[float, float], n: int, seed: int, decoding: str = "beam4+prefix", metric: str = "cider"):
    """metrics.csv rows for UC (es, zh) and SC (en) at one budget: per size, n simulated samples per pair."""
    rng, rows = np.random.default_rng(seed), []
    for size, params in SIZES:
        for group, lang in (("UC", "es"), ("UC", "zh"), ("SC", "en")):
            x = (rng.random(n) < rate[params]).astype(float)
            w = resample_weights(n, 400, seed)
            lo, hi = percentile_interval(w @ x / n)
            rows.append(
                {
                    "run_id": f"{size}-s1000", "size": size, "params": params, "step": 1000,
                    "seen_samples": 16000, "task": "caption", "lang": lang, "group": group,
                    "metric": metric, "decoding": decoding, "value": x.mean(), "lower": lo, "upper": hi,
                    "n": n, "final": True, "partial": False,
                }
            )  # fmt: skip
    return rows


def _slope(rate: dict[float, float]) -> float:
    x = np.log10([p for _, p in SIZES])
    y = np.array([rate[p] for _, p in SIZES])
    return float(np.polyfit(x, y, 1)[0])


CLEAR = {0.5e6: 0.10, 1.3e6: 0.30, 3.7e6: 0.55}
FLAT = {0.5e6: 0.30, 1.3e6: 0.30, 3.7e6: 0.30}


def test_a_clear_rise_answers_yes_and_its_interval_covers_the_true_slope():
    (e,) = emergence(pd.DataFrame(_rows(CLEAR, 128, 0)))
    assert e["answer"] == "yes" and e["emerges"] and e["samples_needed"] is None
    assert e["ci"][0] <= _slope(CLEAR) <= e["ci"][1]
    assert all(lo <= v <= hi for v, lo, hi in zip(e["values"], e["lower"], e["upper"], strict=True))
    assert "does uc cider (beam4+prefix) rise with size? yes" in " ".join(answer_lines(_h(e))).lower()


def test_no_effect_answers_cannot_tell_and_says_what_it_would_take():
    answers = [emergence(pd.DataFrame(_rows(FLAT, 128, s)))[0] for s in range(20)]
    tell = [e for e in answers if e["answer"] != "cannot tell"]
    assert len(tell) <= 3  # a 95% interval excludes a zero slope in ~5% of draws
    e = next(e for e in answers if e["answer"] == "cannot tell")
    assert e["samples_needed"] > 128  # at the measured (spurious) effect, more samples than we have
    line = next(x for x in answer_lines(_h(e)) if "rise with size" in x)
    assert "cannot tell" in line and f"{e['samples_needed']:,} held-out samples per pair" in line


def test_coverage_of_the_slope_interval_over_repeats():
    covered = sum(
        e["ci"][0] <= _slope(CLEAR) <= e["ci"][1]
        for e in (emergence(pd.DataFrame(_rows(CLEAR, 128, s)))[0] for s in range(40))
    )
    assert covered >= 33  # nominal 95%: P(X <= 32 | n=40, p=0.95) < 0.001


def test_small_sets_cannot_tell_a_modest_rise_that_large_sets_can():
    modest = {0.5e6: 0.25, 1.3e6: 0.30, 3.7e6: 0.36}
    small = emergence(pd.DataFrame(_rows(modest, 16, 1)))[0]
    large = emergence(pd.DataFrame(_rows(modest, 4096, 1)))[0]
    assert small["answer"] == "cannot tell" and large["answer"] == "yes"
    assert (large["ci"][1] - large["ci"][0]) < 0.25 * (small["ci"][1] - small["ci"][0])


def test_prefix_effect_and_image_gap_carry_intervals():
    rows = _rows(CLEAR, 128, 2) + _rows(FLAT, 128, 3, decoding="beam4")
    p = prefix_effect(pd.DataFrame(rows))
    assert p["with"] == "beam4+prefix" and p["without"] == "beam4" and p["params"] == 3.7e6
    assert p["ci"][0] < p["difference"] < p["ci"][1] and p["ci"][0] <= 0.55 - 0.30 <= p["ci"][1]
    cond = pd.DataFrame(
        [
            {"run_id": "T-3.7M-s1000", "size": "T-3.7M", "params": 3.7e6, "total_steps": 1000, "step": 1000,
             "group": "UC", "lang": lang, "loss": 1.0, "image_shuffled_loss": 1.0 + gap, "samples": 64,
             "partial": False}
            for lang, gap in (("es", 0.9), ("zh", 0.6))
        ]
    )  # fmt: skip
    g = image_gap(cond)
    assert g["gap"] == pytest.approx(0.75) and g["ci"][0] < 0.75 < g["ci"][1] and g["pairs"] == 2
    assert "spread over the group's 2 pair(s)" in g["interval_from"]
    # With the per-sample spreads recorded (runs since 2026-12-03), the interval is the samples' own.
    cond["loss_sd"], cond["image_shuffled_loss_sd"] = [0.4, 0.5], [0.6, 0.7]
    g = image_gap(cond)
    var_mean = [(0.4**2 + 0.6**2) / 64, (0.5**2 + 0.7**2) / 64]  # per pair: var(true) / n + var(shuffled) / n
    se = math.sqrt(sum(v * 64**2 for v in var_mean)) / 128
    assert g["ci"] == pytest.approx([0.75 - 1.959964 * se, 0.75 + 1.959964 * se], rel=1e-6)
    assert (
        g["answer"] == "yes"
        and "per-sample spread" in g["interval_from"]
        and "128 samples" in g["interval_from"]
    )


def test_the_answer_asks_cider_and_exact_attribute_accuracy_and_folds_the_rest():
    rows = (
        _rows(CLEAR, 64, 4) + _rows(CLEAR, 64, 5, metric="attr_acc") + _rows(FLAT, 64, 6, decoding="greedy")
    )
    lead, rest = split_emergence(emergence(pd.DataFrame(rows)))
    assert [(e["metric"], e["decoding"]) for e in lead] == [
        ("cider", "beam4+prefix"),
        ("attr_acc", "beam4+prefix"),
    ]
    assert [(e["metric"], e["decoding"]) for e in rest] == [("cider", "greedy")]


def _h(e: dict) -> dict:
    return {"emergence": [e], "image_gap": None, "prefix": None}


@pytest.mark.chromium
@skip_without_chromium
def test_rendered_answer_shows_every_claim_with_its_interval(tmp_path: Path) -> None:
    """As Chromium renders the report: each question of the answer carries an interval, the emergence claim
    names its trend test and what it would take, and the folded metric table shows intervals."""
    from plot_sweeps import plotted_sweep

    from florenz_scaling.report import write_report

    root = plotted_sweep(tmp_path)
    rows = _rows(FLAT, 32, 7) + _rows(CLEAR, 32, 8, metric="attr_acc") + _rows(CLEAR, 32, 9, decoding="beam4")
    pd.DataFrame(rows).to_csv(root / "metrics.csv", index=False)
    cond = [
        {"run_id": "T-3.7M-s1000", "size": "T-3.7M", "params": 3.7e6, "total_steps": 1000, "step": 1000,
         "seen_samples": 16000, "task": "caption", "group": "UC", "lang": lang, "loss": 1.0,
         "image_shuffled_loss": 1.0 + gap, "prompt_shuffled_loss": "", "shuffled_loss": "", "samples": 64,
         "partial": False}
        for lang, gap in (("es", 0.9), ("zh", 0.6))
    ]  # fmt: skip
    pd.DataFrame(cond).to_csv(root / "conditioning.csv", index=False)
    html = write_report(root).read_text(encoding="utf-8")
    probe = tmp_path / "answer.html"
    script = """<script>window.addEventListener('load', () => {
      const out = document.createElement('pre'); out.id = 'answer-probe';
      const q = [...document.querySelectorAll('#headline strong.question')].map(s => s.innerText);
      const t = document.querySelector('#metric-table'); t.open = true;
      out.textContent = JSON.stringify({q, table: t.innerText});
      document.body.appendChild(out);
    });</script>"""
    probe.write_text(html.replace("</body>", script + "</body>"), encoding="utf-8")
    dom = chromium(tmp_path, "--dump-dom", probe.as_uri()).stdout
    found = re.search(r'<pre id="answer-probe">([^<]*)</pre>', dom)
    assert found, "the probe script did not run"
    import html as html_lib
    import json

    got = json.loads(html_lib.unescape(found.group(1)))
    interval = re.compile(r"\[-?[\d.e+-]+, -?[\d.e+-]+\]")
    questions = got["q"]
    assert [q.split("?")[0] for q in questions] == [
        "Does UC captioning use the image",
        "Does UC cider (beam4+prefix) rise with size",
        "Does UC attr_acc (beam4+prefix) rise with size",
        "What does the prefix do",
    ]
    assert all(interval.search(q) for q in questions), questions
    cider = questions[1]
    assert "slope" in cider and "bootstrap over held-out samples per size" in cider
    if "cannot tell" in cider:
        assert "held-out samples per pair" in cider
    assert "yes" in questions[2].split("?")[1][:6]
    assert "beam4" in got["table"] and interval.search(got["table"])
