"""Bootstrap intervals over held-out samples for every score of ``train.score``, and the per-sample scores.

A score of a set of decoded samples is a statistic of that set; its uncertainty is how much it moves when the
held-out samples are drawn again. The bootstrap draws them again ``resamples`` times (with replacement) and
recomputes the *corpus* statistic on each draw — not a mean of sentence scores:

- CIDEr's IDF comes from the references of the set scored, so each draw recomputes the document frequencies
  from the drawn references (with multiplicity) and every drawn sample's tf-idf cosine. Vectorised: one
  sparse product gives the drawn document frequencies of all draws, one gather and one sparse product the
  per-sample sums of every n-gram order; no Python loop over samples or draws. With every weight 1 it equals
  pycocoevalcap's scorer (tested), including its quirks (length = bigram count, clipped tf-idf products).
- BLEU and chrF sum sacrebleu's per-sentence statistics over the drawn samples and score the sums.
- exact match and the attribute accuracies are ratios of per-sample counts (objects-weighted).

The draws are seeded by ``seed`` and the set's size only, so two runs scoring the same held-out samples draw
the same resamples (a paired bootstrap across sizes and decodings). Intervals are percentile intervals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from florenz_scaling.data.language import Obj
from florenz_scaling.train.score import ATTRIBUTES, attribute_scores, cider_tokens

RESAMPLES = 1000
LEVEL = 0.95
_SIGMA = 6.0  # CIDEr-D's length penalty width, as pycocoevalcap's scorer
_ORDERS = 4


def resample_weights(n: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """(resamples, n) multiplicities of a bootstrap draw of n samples (each row sums to n)."""
    rng = np.random.default_rng([seed, n])
    return np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(resamples)]).astype(float)


def _ngrams(text: str) -> list[dict[tuple[str, ...], int]]:
    words = text.split()
    out: list[dict[tuple[str, ...], int]] = [{} for _ in range(_ORDERS)]
    for k in range(1, _ORDERS + 1):
        for i in range(len(words) - k + 1):
            g = tuple(words[i : i + k])
            out[k - 1][g] = out[k - 1].get(g, 0) + 1
    return out


def cider_weighted(hyps: Sequence[str], refs: Sequence[str], lang: str, weights: np.ndarray) -> np.ndarray:
    """Corpus CIDEr × 100 of the set drawn with each row of ``weights`` (draws × samples multiplicities)."""
    from scipy import sparse

    n = len(hyps)
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    if n == 0:
        return np.zeros(len(w))
    ids: dict[tuple[str, ...], int] = {}
    ent_s, ent_k, ent_g, tf_h, tf_r, lengths = [], [], [], [], [], np.zeros((n, 2))
    ref_rows, ref_cols = [], []
    for i, (h, r) in enumerate(zip(hyps, refs, strict=True)):
        hc, rc = _ngrams(cider_tokens(h, lang)), _ngrams(cider_tokens(r, lang))
        lengths[i] = sum(hc[1].values()), sum(rc[1].values())  # the scorer's "length" counts bigrams
        for o in range(_ORDERS):
            for g in set(hc[o]) | set(rc[o]):
                j = ids.setdefault(g, len(ids))
                ent_s.append(i), ent_k.append(i * _ORDERS + o), ent_g.append(j)
                tf_h.append(hc[o].get(g, 0)), tf_r.append(rc[o].get(g, 0))
                if g in rc[o]:
                    ref_rows.append(i), ref_cols.append(j)
    if not ids:
        return np.zeros(len(w))
    in_ref = sparse.csr_matrix((np.ones(len(ref_rows)), (ref_rows, ref_cols)), shape=(n, len(ids)))
    seg = sparse.csr_matrix(
        (np.ones(len(ent_k)), (ent_k, np.arange(len(ent_k)))), shape=(n * _ORDERS, len(ent_k))
    )
    g, th, tr = np.asarray(ent_g), np.asarray(tf_h, float), np.asarray(tf_r, float)
    penalty = np.exp(-((lengths[:, 0] - lengths[:, 1]) ** 2) / (2 * _SIGMA**2))
    out = np.empty(len(w))
    for lo in range(0, len(w), 200):  # chunks keep the (draws × entries) arrays small
        wc = w[lo : lo + 200]
        df = np.asarray((in_ref.T @ wc.T).T)  # drawn document frequency of every n-gram
        idf = np.log(n) - np.log(np.maximum(df, 1.0))[:, g]
        vh, vr = th * idf, tr * idf
        num = (seg @ (np.minimum(vh, vr) * vr).T).T
        norm = np.sqrt((seg @ (vh**2).T).T * (seg @ (vr**2).T).T)
        val = np.where(norm > 0, num / np.where(norm > 0, norm, 1.0), num).reshape(len(wc), n, _ORDERS)
        per_sample = val.mean(axis=2) * penalty * 10.0
        out[lo : lo + 200] = (per_sample * wc).sum(axis=1) / wc.sum(axis=1)
    return 100.0 * out


def _sacre_stats(hyps: Sequence[str], refs: Sequence[str], lang: str) -> tuple[np.ndarray, np.ndarray, list]:
    from sacrebleu.metrics import BLEU, CHRF

    bleu = BLEU(tokenize="zh" if lang == "zh" else "13a")
    chrf = CHRF()
    b = np.asarray(bleu._extract_corpus_statistics(list(hyps), [list(refs)]), dtype=float)
    c = np.asarray(chrf._extract_corpus_statistics(list(hyps), [list(refs)]), dtype=float)
    return b, c, [bleu, chrf]


def sample_counts(
    hyps: Sequence[str], refs: Sequence[str], lang: str, objects: Sequence[Sequence[Obj] | None] | None = None
) -> dict[str, np.ndarray]:
    """Per-sample numbers whose weighted ratios are the share metrics: ``exact_match`` (0/1), and for samples
    with known scene objects ``objects``, ``exact`` and one count per attribute (``train.score``)."""
    out = {"exact_match": np.array([h.strip() == r.strip() for h, r in zip(hyps, refs, strict=True)], float)}
    objs = list(objects or [None] * len(hyps))
    if any(objs):
        rows = [attribute_scores(h, o, lang) if o else None for h, o in zip(hyps, objs, strict=True)]
        for k in ("objects", "exact", *ATTRIBUTES):
            out[k] = np.array([r[k] if r else 0 for r in rows], float)
    return out


def bootstrap_scores(
    hyps: Sequence[str],
    refs: Sequence[str],
    lang: str,
    objects: Sequence[Sequence[Obj] | None] | None = None,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """metric -> its value on each bootstrap draw of the samples (``resamples`` values), for every metric
    ``train.score.score_set`` reports. Attribute metrics draw only among samples with known objects."""
    n = len(hyps)
    if n == 0:
        return {}
    w = resample_weights(n, resamples, seed)
    out = {"cider": cider_weighted(hyps, refs, lang, w)}
    b, c, (bleu, chrf) = _sacre_stats(hyps, refs, lang)
    wb, wc = w @ b, w @ c
    out["bleu"] = np.array([bleu._compute_score_from_stats(list(row)).score for row in wb])
    out["chrf"] = np.array([chrf._compute_score_from_stats(list(row)).score for row in wc])
    counts = sample_counts(hyps, refs, lang, objects)
    out["exact_match"] = w @ counts["exact_match"] / n
    if "objects" in counts:
        known = counts["objects"] > 0
        wk = resample_weights(int(known.sum()), resamples, seed)
        den = np.maximum(wk @ counts["objects"][known], 1.0)
        out["attr_acc"] = wk @ counts["exact"][known] / den
        out |= {f"attr_{a}": wk @ counts[a][known] / den for a in ATTRIBUTES}
    return out


def percentile_interval(draws: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The percentile interval of bootstrap draws at ``level``."""
    lo, hi = np.quantile(np.asarray(draws, float), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def score_intervals(
    hyps: Sequence[str],
    refs: Sequence[str],
    lang: str,
    objects: Sequence[Sequence[Obj] | None] | None = None,
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """metric -> (lower, upper): the bootstrap interval over samples of each score of ``score_set``."""
    draws = bootstrap_scores(hyps, refs, lang, objects, resamples=resamples, seed=seed)
    return {m: percentile_interval(d, level) for m, d in draws.items()}


def sample_cider(hyps: Sequence[str], refs: Sequence[str], lang: str) -> np.ndarray:
    """Each sample's CIDEr × 100 under the whole set's IDF (their mean is the set's CIDEr): the per-sample
    score recorded for analysis across runs (pycocoevalcap's own per-sample scores)."""
    from pycocoevalcap.cider.cider_scorer import CiderScorer

    if not hyps:
        return np.zeros(0)
    scorer = CiderScorer(n=_ORDERS, sigma=_SIGMA)
    for h, r in zip(hyps, refs, strict=True):
        scorer += (cider_tokens(h, lang), [cider_tokens(r, lang)])
    _, scores = scorer.compute_score()
    return 100.0 * np.asarray(scores, float)


__all__ = [
    "LEVEL",
    "RESAMPLES",
    "bootstrap_scores",
    "cider_weighted",
    "percentile_interval",
    "resample_weights",
    "sample_cider",
    "sample_counts",
    "score_intervals",
]
