"""Bootstrap intervals over held-out samples (train.intervals) and their way into metrics.csv."""

from __future__ import annotations

import random

import numpy as np
import pytest

from florenz_scaling.results.metrics import METRIC_COLUMNS, metric_row, read_metrics
from florenz_scaling.results.records import MetricRecord, RecordWriter, parse_line, sample_record
from florenz_scaling.train.intervals import (
    bootstrap_scores,
    cider_weighted,
    resample_weights,
    sample_cider,
    score_intervals,
)
from florenz_scaling.train.score import bleu, chrf, cider

WORDS = "red blue green big small circle square three two one left right top bottom".split()


def _set(n: int, seed: int, right: float) -> tuple[list[str], list[str]]:
    """n references and hypotheses of which a share ``right`` equal their reference."""
    rnd = random.Random(seed)
    refs = [" ".join(rnd.choices(WORDS, k=8)) for _ in range(n)]
    hyps = [r if rnd.random() < right else " ".join(rnd.choices(WORDS, k=7)) for r in refs]
    return hyps, refs


def test_weighted_cider_equals_the_scorer_on_the_drawn_set():
    hyps, refs = _set(64, 0, 0.3)
    assert cider_weighted(hyps, refs, "en", np.ones((1, 64)))[0] == pytest.approx(cider(hyps, refs, "en"))
    idx = np.random.default_rng(3).integers(0, 64, 64)
    w = np.bincount(idx, minlength=64)[None].astype(float)
    drawn = cider([hyps[i] for i in idx], [refs[i] for i in idx], "en")
    assert cider_weighted(hyps, refs, "en", w)[0] == pytest.approx(drawn)
    assert sample_cider(hyps, refs, "en").mean() == pytest.approx(cider(hyps, refs, "en"))


def test_bleu_and_chrf_draws_centre_on_the_corpus_score():
    hyps, refs = _set(128, 1, 0.4)
    draws = bootstrap_scores(hyps, refs, "en", resamples=400)
    assert np.median(draws["bleu"]) == pytest.approx(bleu(hyps, refs, "en"), abs=3)
    assert np.median(draws["chrf"]) == pytest.approx(chrf(hyps, refs), abs=3)


def test_interval_covers_the_true_share_at_the_nominal_rate():
    # Simulated sets whose exact-match share is 0.3 by construction: the 95% interval covers it ~95% of the
    # time (binomial band over 60 sets), and narrows like 1/sqrt(n).
    covered, widths = 0, {}
    for seed in range(60):
        hyps, refs = _set(128, seed, 0.3)
        lo, hi = score_intervals(hyps, refs, "en", resamples=300, seed=seed)["exact_match"]
        covered += lo <= 0.3 <= hi
        widths.setdefault(128, []).append(hi - lo)
    assert covered >= 51  # P(X <= 50 | n=60, p=0.95) < 0.01
    hyps, refs = _set(512, 99, 0.3)
    lo, hi = score_intervals(hyps, refs, "en", resamples=300)["exact_match"]
    assert (hi - lo) < 0.65 * np.mean(widths[128])


def test_same_size_sets_draw_the_same_resamples():
    assert np.array_equal(resample_weights(50, 20, 0), resample_weights(50, 20, 0))
    assert resample_weights(50, 20, 0).sum(axis=1).tolist() == [50.0] * 20


def test_metric_records_carry_their_interval_into_metrics_csv(tmp_path):
    rec = MetricRecord("r", 10, 160, "caption", "es", "UC", "cider", "beam4+prefix", 70.0, 128, 61.0, 80.5)
    path = tmp_path / "metrics.jsonl"
    sample = sample_record("r", 10, ("caption", "es"), "beam4+prefix", 3, {"cider": 55.0, "exact_match": 0})
    RecordWriter(path).write([rec.to_record(), sample])
    read = read_metrics(path)
    assert read.bad_lines == [] and read.records == [rec]
    assert parse_line(sample.to_json()).values["cider"] == 55.0
    run = {"params": 1, "trainable_params": 1, "fwd_gmacs": 1.0, "total_steps": 10, "global_batch": 16}
    row = metric_row("r", run, read.records[0], partial=False)
    assert (row["lower"], row["upper"]) == (61.0, 80.5)
    assert {"lower", "upper"} <= set(METRIC_COLUMNS)
    old = MetricRecord.of(
        parse_line(
            MetricRecord("r", 1, 0, "caption", "es", "", "bleu", "greedy", 1.0, 4).to_record().to_json()
        )
    )
    assert old.lower is None and old.upper is None
