"""Held-out evaluation: per-sample masked token-mean CE, averaged per pair, records per group."""

from __future__ import annotations

import pytest
import torch

from florenz_scaling.data import prepare
from florenz_scaling.model.florenz import build_model
from florenz_scaling.results import LossRecord
from florenz_scaling.spec import DataSpec
from florenz_scaling.train.evaluate import eval_pairs, evaluate, evaluate_groups, group_means

GROUPS = {
    "SC": (("caption", "en"), ("caption", "de")),
    "UC": (("caption", "es"),),
    "ALL-EN": (("caption", "en"),),  # a pair listed by two groups
}


@pytest.fixture(scope="module")
def heldout(tmp_path_factory: pytest.TempPathFactory):
    spec = DataSpec(
        heldout_per_pair=6, caption_languages=("en", "de"), translation_languages=("fr",), groups=GROUPS
    )
    return prepare(spec, tmp_path_factory.mktemp("data")).heldout()


@pytest.fixture(scope="module")
def model():
    return build_model("T-0.2M", seed=0)


def test_pairs_cover_groups_and_training_pairs(heldout) -> None:
    pairs = dict(eval_pairs(heldout))
    assert pairs[("caption", "en")] == ("SC", "ALL-EN")
    assert pairs[("caption", "es")] == ("UC",)
    assert pairs[("translate", "fr")] == ("",)  # trained, but in no group
    assert set(pairs) == {("caption", "en"), ("caption", "de"), ("caption", "es"), ("translate", "fr")}


def test_records_match_a_direct_computation(heldout, model) -> None:
    model.train()
    records = evaluate(model, heldout, "r1", step=7, seen_samples=56, batch_size=4)  # batches of 4 and 2
    assert model.training, "training mode is restored"
    keys = [(r.task, r.lang, r.group) for r in records]
    assert len(keys) == len(set(keys)) == 5
    assert all(r.kind == "eval" and r.run_id == "r1" for r in records)
    assert all(r.step == 7 and r.seen_samples == 56 for r in records)
    # Per-sample token means, averaged over samples, computed here in one batch of all six samples.
    batch = next(heldout.batches(("caption", "es"), 6))
    with torch.no_grad():
        model.eval()
        logits = model(**batch)
        model.train()
    labels = batch["labels"]
    ce = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), labels, ignore_index=-100, reduction="none"
    )
    per_sample = ce.sum(1) / (labels != -100).sum(1)
    rec = next(r for r in records if r.lang == "es")
    assert rec.loss == pytest.approx(float(per_sample.mean()), abs=1e-5)
    assert rec.loss_sd == pytest.approx(float(per_sample.std()), abs=1e-5)  # the spread behind gap intervals
    assert rec.samples == 6 and rec.tokens == int((labels != -100).sum())
    same = [r for r in records if (r.task, r.lang) == ("caption", "en")]
    assert {r.group for r in same} == {"SC", "ALL-EN"} and same[0].loss == same[1].loss


def test_group_means_are_sample_weighted() -> None:
    def rec(lang: str, group: str, loss: float, samples: int) -> LossRecord:
        return LossRecord("r", 1, 1, "eval", "caption", lang, group, loss, samples, 10)

    means = group_means([rec("en", "G", 1.0, 1), rec("de", "G", 4.0, 3), rec("fr", "", 9.0, 5)])
    assert means == {"G": pytest.approx(3.25)}


def test_evaluate_groups(heldout, model) -> None:
    groups = evaluate_groups(model, heldout, batch_size=8)
    assert set(groups) == {"SC", "UC", "ALL-EN"}
    assert all(4.0 < v < 10.0 for v in groups.values())  # about ln(1024) for an untrained model


def test_evaluate_is_deterministic(heldout, model) -> None:
    a = evaluate(model, heldout, "r", 1, 1, batch_size=3)
    b = evaluate(model, heldout, "r", 1, 1, batch_size=6)  # batching does not change a per-sample mean
    assert [r.loss for r in a] == pytest.approx([r.loss for r in b], abs=1e-5)


def test_shuffled_conditioning_measures_whether_the_model_uses_its_inputs(heldout, model) -> None:
    eval_recs = {(r.task, r.lang, r.group): r for r in evaluate(model, heldout, "r", 5, 40, batch_size=4)}
    shuffled = evaluate(model, heldout, "r", 5, 40, batch_size=5, shuffled=True)  # batches of 5 and 1
    assert {r.kind for r in shuffled} == {"shuffled"}, "True is the older probe: image and prompt at once"
    assert {(r.task, r.lang, r.group) for r in shuffled} == set(eval_recs)
    assert all(r.samples == 5 for r in shuffled), "a batch of one has no other sample to borrow from"
    # Even at init, BART's cross-attention reads the encoder: other images and prompts change the loss.
    assert all(r.loss != eval_recs[(r.task, r.lang, r.group)].loss for r in shuffled)
    # A Gemma decoder with every gate at 0 cannot see the encoder: shuffling changes nothing.
    blind = build_model("TG-1.2M", seed=0)
    same = evaluate(blind, heldout, "r", 5, 40, batch_size=6)
    swapped = evaluate(blind, heldout, "r", 5, 40, batch_size=6, shuffled=True)
    assert [r.loss for r in swapped] == pytest.approx([r.loss for r in same], abs=1e-6)
    assert group_means(swapped, kind="shuffled").keys() == group_means(same).keys()


def test_image_and_prompt_shuffling_are_separate_probes(heldout, model) -> None:
    true = {(r.task, r.lang, r.group): r.loss for r in evaluate(model, heldout, "r", 5, 40, batch_size=6)}
    image = evaluate(model, heldout, "r", 5, 40, batch_size=6, shuffled="image")
    prompt = evaluate(model, heldout, "r", 5, 40, batch_size=6, shuffled="prompt")
    assert {r.kind for r in image} == {"shuffled_image"} and {r.kind for r in prompt} == {"shuffled_prompt"}
    for r in image:  # every sample's scene is drawn differently: other images change every pair's loss
        assert r.loss != true[(r.task, r.lang, r.group)]
    for r in prompt:
        if r.task == "caption":  # a captioning pair's prompts are all the same sentence: nothing changes
            assert r.loss == pytest.approx(true[(r.task, r.lang, r.group)], abs=1e-6)
        else:  # a translation prompt holds the source sentence
            assert r.loss != true[(r.task, r.lang, r.group)]
    with pytest.raises(ValueError, match="shuffled must be"):
        evaluate(model, heldout, "r", 5, 40, shuffled="pixels")


def test_conditioning_probes_write_both_kinds(heldout, model) -> None:
    from florenz_scaling.train.evaluate import conditioning_probes

    recs = conditioning_probes(model, heldout, "r", 5, 40, batch_size=6)
    kinds = {r.kind for r in recs}
    assert kinds == {"shuffled_image", "shuffled_prompt"}
    assert len(recs) == 2 * len(evaluate(model, heldout, "r", 5, 40, batch_size=6))
