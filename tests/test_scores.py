"""Scores of decoded sentences: references score the maximum, and the world-grounded attribute accuracy is
exact (1.0 on the world's own sentences, one object's worth lower for each attribute changed)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from florenz_scaling.data.language import COLOURS, POSITIONS, SHAPES, SIZES, Obj, describe
from florenz_scaling.data.world import MAX_COUNT, sample_scene
from florenz_scaling.train import score

LANGS = ("en", "de", "fr", "es", "ru", "zh")
VALUES = {
    "shape": SHAPES,
    "colour": COLOURS,
    "size": SIZES,
    "position": POSITIONS,
    "count": tuple(range(1, MAX_COUNT + 1)),
}


def scenes(n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [sample_scene(rng, "heldout") for _ in range(n)]


@pytest.mark.parametrize("lang", LANGS)
def test_attribute_accuracy_is_one_on_the_worlds_own_sentences(lang: str) -> None:
    for framed in (False, True):
        objs = [s.objects for s in scenes(100)]
        texts = ["".join(describe(o, lang, framed)) for o in objs]
        acc = score.attribute_accuracy(texts, objs, lang)
        assert acc == {m: 1.0 for m in score.ATTRIBUTE_METRICS}, (framed, acc)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("attr", score.ATTRIBUTES)
def test_each_changed_attribute_costs_exactly_one_object(lang: str, attr: str) -> None:
    for scene in scenes(30, seed=1):
        objs = list(scene.objects)
        i = len(objs) - 1
        taken = {o.position for o in objs}
        value = next(
            v for v in VALUES[attr] if v != getattr(objs[i], attr) and (attr != "position" or v not in taken)
        )
        wrong = objs[:i] + [objs[i]._replace(**{attr: value})]
        for framed in (False, True):
            text = "".join(describe(wrong, lang, framed))
            got = score.attribute_scores(text, scene.objects, lang)
            n = len(objs)
            assert got["objects"] == n
            assert got["exact"] == n - 1, (text, got)
            assert got[attr] == n - 1, (text, got)
            assert all(got[a] == n for a in score.ATTRIBUTES if a != attr), (text, got)


@pytest.mark.parametrize("lang", LANGS)
def test_missing_and_extra_objects(lang: str) -> None:
    objs = (Obj("circle", "red", "large", "left", 1), Obj("star", "blue", "small", "top", 3))
    one = "".join(describe(objs[:1], lang, False))
    got = score.attribute_scores(one, objs, lang)
    assert got["exact"] == 1 and got["shape"] == 1  # the second object is not described
    extra = objs + (Obj("cross", "black", "small", "bottom right", 2),)
    assert score.attribute_scores("".join(describe(extra, lang, True)), objs, lang)["exact"] == 2
    assert score.attribute_scores("", objs, lang) == {
        "objects": 2,
        "exact": 0,
        **dict.fromkeys(score.ATTRIBUTES, 0),
    }


def test_wrong_agreement_is_not_exact_but_states_the_attributes() -> None:
    objs = (Obj("circle", "red", "large", "left", 1),)
    got = score.attribute_scores("Eine große rote Kreis links.", objs, "de")  # "ein großer roter Kreis"
    assert got["exact"] == 0 and all(got[a] == 1 for a in score.ATTRIBUTES)


def test_objects_from_key_reads_scene_keys_only() -> None:
    for s in scenes(20):
        assert sorted(score.objects_from_key(s.key)) == sorted(s.objects)
    assert score.objects_from_key("") is None
    assert score.objects_from_key("webdataset-000123") is None
    assert score.objects_from_key("circle,red,large,nowhere,1") is None


@pytest.mark.parametrize("lang", LANGS)
def test_reference_metrics_are_maximal_on_references(lang: str) -> None:
    refs = ["".join(describe(s.objects, lang, s.framed)) for s in scenes(20)]
    out = score.score_set(refs, refs, lang)
    assert out["bleu"][0] == pytest.approx(100.0)
    assert out["chrf"][0] == pytest.approx(100.0)
    assert out["exact_match"] == (1.0, 20)
    # pycocoevalcap's CIDEr(-D) gives 10 to a hypothesis equal to its reference (×100 here) as long as the
    # set has different references (its IDF comes from the set's references).
    assert out["cider"][0] == pytest.approx(1000.0)
    assert "attr_acc" not in out  # no scene objects given: reference metrics only
    worse = score.score_set([refs[1]] + refs[1:], refs, lang)
    assert worse["bleu"][0] < 100 and worse["cider"][0] < 1000 and worse["exact_match"][0] == 0.95


def test_cider_of_a_single_sample_is_zero_by_construction() -> None:
    # Every n-gram of a one-sample set is in every reference: IDF zero, CIDEr zero whatever is said.
    assert score.cider(["a red circle on the left"], ["a red circle on the left"], "en") == 0.0


def test_cider_tokenises_chinese_by_character() -> None:
    assert score.cider_tokens("左边有一个红色的大圆形。", "zh") == "左 边 有 一 个 红 色 的 大 圆 形"
    assert score.cider_tokens("A large red circle, on the left.", "en") == "a large red circle on the left"


def test_the_scorer_imports_no_torch() -> None:
    nodes = list(ast.walk(ast.parse(Path(score.__file__).read_text())))
    names = {a.name.split(".")[0] for n in nodes if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in nodes if isinstance(n, ast.ImportFrom) and n.module}
    assert not names & {"torch", "transformers", "deepspeed"}
