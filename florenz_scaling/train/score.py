"""Scores of decoded sentences against references: BLEU, chrF, CIDEr, exact match, and the synthetic world's
attribute accuracy. No torch here (the scorers are pure Python; ``data.language`` supplies the grammar).

Units (the ``value`` column of metrics.jsonl):

- ``bleu``, ``chrf``: sacrebleu corpus scores, 0-100 (BLEU tokenised ``zh`` for Chinese, ``13a`` otherwise;
  chrF works on characters, so Chinese needs nothing special). Hypotheses equal to references score 100.
- ``cider``: pycocoevalcap's CIDEr(-D) scorer × 100, the unit papers report ("CIDEr 26.6"). Its IDF comes
  from the references of the set being scored, so an n-gram in *every* reference weighs nothing, and a set of
  one sample scores 0 whatever is said. A sample whose hypothesis equals its reference scores the scorer's
  maximum of 10 (1000 here) as long as the set has at least two different references; every n-gram order
  must hold one n-gram not in all references. Tokens: lower-cased words (``\\w+``) and, for Chinese,
  characters; punctuation dropped (no Java PTB tokenizer).
- ``exact_match``: share of outputs equal to the reference (whitespace at the ends ignored), 0-1.
- ``attr_acc`` and ``attr_<shape|colour|size|position|count>`` (synthetic world only), 0-1, weighted by
  objects: the generated sentence is split into object phrases with the language's own separators, each
  phrase is read with the world's lexicons and inflections (``data.language``), and phrases are matched
  one-to-one to the scene's objects so that the most attributes agree. ``attr_<a>``: share of the scene's
  objects whose attribute ``a`` the matched phrase states (a phrase stating two values of one attribute
  states none). ``attr_acc``: share of the scene's objects said exactly as the world's grammar says them
  (all five attributes, with correct agreement, in either sentence style). Extra objects are not rewarded
  (one-to-one matching) but also not penalised here: exact match and BLEU see them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from functools import cache

from florenz_scaling.data import language as L
from florenz_scaling.data.language import DECODER_PREFIXES, Obj, describe

ATTRIBUTES = ("shape", "colour", "size", "position", "count")
REFERENCE_METRICS = ("bleu", "chrf", "cider", "exact_match")
ATTRIBUTE_METRICS = ("attr_acc", *(f"attr_{a}" for a in ATTRIBUTES))
_MAX_PHRASES = 6  # phrases read from one output: a rambling decode cannot make matching expensive


# --- reference-based metrics ----------------------------------------------------------------------------


def cider_tokens(text: str, lang: str) -> str:
    """CIDEr's input: space-separated tokens (characters for Chinese), lower-cased, without punctuation."""
    if lang == "zh":
        return " ".join(c for c in text if c.isalnum())
    return " ".join(re.findall(r"\w+", text.lower()))


def bleu(hyps: Sequence[str], refs: Sequence[str], lang: str) -> float:
    import sacrebleu

    tokenize = "zh" if lang == "zh" else "13a"
    return float(sacrebleu.corpus_bleu(list(hyps), [list(refs)], tokenize=tokenize).score)


def chrf(hyps: Sequence[str], refs: Sequence[str]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_chrf(list(hyps), [list(refs)]).score)


def cider(hyps: Sequence[str], refs: Sequence[str], lang: str) -> float:
    """Corpus CIDEr × 100 with one reference per sample (see the module docstring for its maximum)."""
    from pycocoevalcap.cider.cider_scorer import CiderScorer

    scorer = CiderScorer(n=4, sigma=6.0)
    for h, r in zip(hyps, refs, strict=True):
        scorer += (cider_tokens(h, lang), [cider_tokens(r, lang)])
    if scorer.size() == 0:
        return 0.0
    score, _ = scorer.compute_score()
    return 100.0 * float(score)


def exact_match(hyps: Sequence[str], refs: Sequence[str]) -> float:
    pairs = list(zip(hyps, refs, strict=True))
    return sum(h.strip() == r.strip() for h, r in pairs) / max(len(pairs), 1)


# --- the synthetic world's attributes -------------------------------------------------------------------


def objects_from_key(key: str) -> tuple[Obj, ...] | None:
    """A scene's objects from its content key (``data.world.Scene.key``); None if ``key`` is not one."""
    objs = []
    for part in key.split("|") if key else []:
        fields = part.split(",")
        if len(fields) != 5 or not fields[4].isdigit():
            return None
        shape, colour, size, position, count = fields
        known = (shape in L.SHAPES, colour in L.COLOURS, size in L.SIZES, position in L.POSITIONS)
        if not all(known):
            return None
        objs.append(Obj(shape, colour, size, position, int(count)))
    return tuple(objs) or None


def _forms(table: dict[str, tuple[str, ...]], index: Sequence[int]) -> dict[str, str]:
    return {table[v][i].lower(): v for v in table for i in index}


@cache
def lexicon(lang: str) -> dict[str, dict[str, object]]:
    """attribute -> {surface form: value} in ``lang``, every inflection the world's grammar produces."""
    pos = {
        "en": L._EN_POS,
        "de": L._DE_POS,
        "fr": L._FR_POS,
        "es": L._ES_POS,
        "ru": L._RU_POS,
        "zh": L._ZH_POS,
    }[lang]
    out: dict[str, dict[str, object]] = {"position": {t.lower(): p for p, t in pos.items()}}
    if lang == "en":
        out["shape"] = {n: s for s, n in L._EN_NOUN.items()} | {
            L._EN_PLURAL.get(s, n + "s"): s for s, n in L._EN_NOUN.items()
        }
        out["colour"] = {c: c for c in L.COLOURS}
        out["size"] = {s: s for s in L.SIZES}
        out["count"] = {w: c for c, w in L._EN_NUM.items()}
    elif lang == "de":
        out["shape"] = _forms(L._DE_NOUN, (0, 2))
        adj = {a: {L._DE_ADJ[a] + e for e in ("", "e", "er", "es", "en")} for a in L._DE_ADJ}
        out["colour"] = {f.lower(): a for a in L.COLOURS for f in adj[a]}
        out["size"] = {f.lower(): a for a in L.SIZES for f in adj[a]}
        out["count"] = {"ein": 1, "eine": 1, "einen": 1} | {w: c for c, w in L._DE_NUM.items()}
    elif lang in ("fr", "es"):
        nouns, adj = (L._FR_NOUN, L._FR_ADJ) if lang == "fr" else (L._ES_NOUN, L._ES_ADJ)
        out["shape"] = _forms(nouns, (0, 2))
        out["colour"] = _forms({c: adj[c] for c in L.COLOURS}, range(4))
        out["size"] = _forms({s: adj[s] for s in L.SIZES}, range(4))
        words = ("un", "une", "deux", "trois") if lang == "fr" else ("un", "una", "dos", "tres")
        out["count"] = dict(zip(words, (1, 1, 2, 3), strict=True))
    elif lang == "ru":
        out["shape"] = _forms(L._RU_NOUN, (0, 2))
        out["colour"] = _forms({c: L._RU_ADJ[c] for c in L.COLOURS}, range(4))
        out["size"] = _forms({s: L._RU_ADJ[s] for s in L.SIZES}, range(4))
        out["count"] = {"два": 2, "две": 2, "три": 3}  # no numeral: one
    elif lang == "zh":
        out["shape"] = {t: s for s, t in L._ZH_SHAPE.items()}
        out["colour"] = {t: c for c, t in L._ZH_COLOUR.items()}
        out["size"] = {t: s for s, t in L._ZH_SIZE.items()}
        out["count"] = {f"{w}个": c for c, w in L._ZH_NUM.items()}
    else:
        raise KeyError(f"no lexicon for language {lang!r}")
    return out


def _normal(text: str, lang: str) -> str:
    """A phrase as compared: lower-cased words (characters for Chinese) without punctuation."""
    return cider_tokens(text, lang)


def phrases(text: str, lang: str) -> list[str]:
    """The object phrases of a sentence: its prefix dropped, split at the language's separators."""
    text = text.strip()
    prefix = DECODER_PREFIXES[lang]
    if text.lower().startswith(prefix.lower()):
        text = text[len(prefix) :]
    if lang == "zh":
        parts = re.split(r"[，、和。,.]", text)
    else:
        parts = re.split(rf"[,.;]|\s{re.escape(L._CONJ[lang])}\s", text)
    return [p.strip() for p in parts if p.strip()][:_MAX_PHRASES]


def read_phrase(phrase: str, lang: str) -> dict[str, object]:
    """The attributes one phrase states: attribute -> value, for those stated exactly once."""
    lex, found = lexicon(lang), {}
    if lang == "zh":
        rest = phrase
        for attr in ("position", "count", "shape", "colour", "size"):  # longest, most specific first
            values = set()
            for form in sorted(lex[attr], key=len, reverse=True):
                while form in rest:
                    values.add(lex[attr][form])
                    rest = rest.replace(form, " ", 1)
            if len(values) == 1:
                found[attr] = values.pop()
        return found
    words = re.findall(r"\w+", phrase.lower())
    text = f" {' '.join(words)} "
    positions = set()
    for form in sorted(lex["position"], key=len, reverse=True):  # "oben links" before "links"
        while f" {form} " in text:
            positions.add(lex["position"][form])
            text = text.replace(f" {form} ", " ", 1)
    if len(positions) == 1:
        found["position"] = positions.pop()
    rest = text.split()
    for attr in ("shape", "colour", "size", "count"):
        values = {lex[attr][w] for w in rest if w in lex[attr]}
        if len(values) == 1:
            found[attr] = values.pop()
    numeral = any(w in lex["count"] for w in rest)
    if lang == "ru" and "count" not in found and not numeral and "shape" in found:
        found["count"] = 1  # Russian states one by the bare noun
    return found


def _exact(phrase: str, obj: Obj, lang: str) -> bool:
    said = _normal(phrase, lang)
    return any(said == _normal(describe([obj], lang, framed)[1], lang) for framed in (False, True))


def attribute_scores(text: str, objects: Sequence[Obj], lang: str) -> dict[str, int]:
    """Counts for one sentence: ``objects`` (scene objects), ``exact`` and one per attribute (module doc)."""
    read = [(p, read_phrase(p, lang)) for p in phrases(text, lang)]
    agree = [[[attrs.get(a) == getattr(o, a) for a in ATTRIBUTES] for _, attrs in read] for o in objects]
    exact = [[_exact(p, o, lang) for p, _ in read] for o in objects]
    n = len(objects)
    best: tuple[int, ...] = (-1,) * n
    best_score = (0, 0)
    for perm in itertools.permutations(range(len(read)), min(n, len(read))):
        for chosen in itertools.permutations(range(n), len(perm)):  # which objects the phrases describe
            score = (
                sum(sum(agree[i][j]) for i, j in zip(chosen, perm, strict=True)),
                sum(exact[i][j] for i, j in zip(chosen, perm, strict=True)),
            )
            if score > best_score:
                best_score = score
                best = tuple(perm[chosen.index(i)] if i in chosen else -1 for i in range(n))
    out = {"objects": n, "exact": 0, **{a: 0 for a in ATTRIBUTES}}
    for i, j in enumerate(best):
        if j >= 0:
            out["exact"] += exact[i][j]
            for a, ok in zip(ATTRIBUTES, agree[i][j], strict=True):
                out[a] += ok
    return out


def attribute_accuracy(texts: Sequence[str], objects: Sequence[Sequence[Obj]], lang: str) -> dict[str, float]:
    """``attr_acc`` and ``attr_<attribute>`` of a set of sentences (object-weighted shares, 0-1)."""
    totals = {"objects": 0, "exact": 0, **{a: 0 for a in ATTRIBUTES}}
    for text, objs in zip(texts, objects, strict=True):
        for k, v in attribute_scores(text, objs, lang).items():
            totals[k] += v
    n = max(totals["objects"], 1)
    return {"attr_acc": totals["exact"] / n, **{f"attr_{a}": totals[a] / n for a in ATTRIBUTES}}


def score_set(
    hyps: Sequence[str], refs: Sequence[str], lang: str, objects: Sequence[Sequence[Obj] | None] | None = None
) -> dict[str, tuple[float, int]]:
    """metric -> (value, n) for one (pair, decoding): the reference metrics over all samples, and the
    attribute metrics over the samples whose scene objects are known (n counts samples)."""
    out = {
        "bleu": (bleu(hyps, refs, lang), len(hyps)),
        "chrf": (chrf(hyps, refs), len(hyps)),
        "cider": (cider(hyps, refs, lang), len(hyps)),
        "exact_match": (exact_match(hyps, refs), len(hyps)),
    }
    known = [(h, o) for h, o in zip(hyps, objects or [None] * len(hyps), strict=True) if o]
    if known:
        attrs = attribute_accuracy([h for h, _ in known], [o for _, o in known], lang)
        out |= {k: (v, len(known)) for k, v in attrs.items()}
    return out


__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_METRICS",
    "REFERENCE_METRICS",
    "attribute_accuracy",
    "attribute_scores",
    "bleu",
    "chrf",
    "cider",
    "cider_tokens",
    "exact_match",
    "lexicon",
    "objects_from_key",
    "phrases",
    "read_phrase",
    "score_set",
]
