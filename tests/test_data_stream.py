"""Training stream, batch contract, balance, determinism, resumption, ranks, prefixes, held-out sets."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from florenz_scaling.data import (
    IGNORE_INDEX,
    PreparedData,
    SyntheticStream,
    is_heldout_key,
    prepare,
)
from florenz_scaling.data.collate import Sample
from florenz_scaling.spec import DataSpec

TENSORS = ("pixel_values", "input_ids", "attention_mask", "decoder_input_ids", "labels")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> PreparedData:
    return prepare(DataSpec(), tmp_path_factory.mktemp("data"))


def same_samples(a: list[Sample], b: list[Sample]) -> bool:
    return len(a) == len(b) and all(
        (x.task, x.lang, x.prompt, x.prefix, x.body, x.key)
        == (y.task, y.lang, y.prompt, y.prefix, y.body, y.key)
        and np.array_equal(x.image, y.image)
        for x, y in zip(a, b, strict=True)
    )


def assert_batches_equal(a: dict, b: dict) -> None:
    for k in TENSORS:
        assert torch.equal(a[k], b[k]), k
    assert a["task"] == b["task"] and a["lang"] == b["lang"]


def test_batch_contract(data: PreparedData) -> None:
    spec, tok = data.spec, data.tokenizer
    b = data.train_stream(seed=1).next_batch(16)
    assert b["pixel_values"].shape == (16, 3, spec.image_size, spec.image_size)
    assert b["pixel_values"].dtype == torch.float32
    for k in ("input_ids", "attention_mask"):
        assert b[k].shape == (16, spec.prompt_len) and b[k].dtype == torch.long
    for k in ("decoder_input_ids", "labels"):
        assert b[k].shape == (16, spec.target_len) and b[k].dtype == torch.long
    assert len(b["task"]) == len(b["lang"]) == 16
    # ImageNet normalisation: uint8 0 and 255 map to (0 - mean)/std and (1 - mean)/std.
    assert b["pixel_values"].min() >= (0 - 0.485) / 0.229 - 1e-5
    assert b["pixel_values"].max() <= (1 - 0.406) / 0.225 + 1e-5
    am = b["attention_mask"]
    pad = data.encoder_tokenizer.pad_id  # prompts are in the encoder's vocabulary
    assert torch.equal(b["input_ids"][am == 0], torch.full_like(b["input_ids"][am == 0], pad))
    assert (am.sum(1) > 0).all() and torch.equal(am, am.cummin(1).values)  # right padding
    for i in range(16):
        labels, dec = b["labels"][i], b["decoder_input_ids"][i]
        n = int((labels != IGNORE_INDEX).sum())
        assert dec[0] == tok.bos_id
        assert torch.equal(dec[1:n], labels[: n - 1])  # teacher forcing: shifted right by one
        assert (dec[n:] == tok.pad_id).all() and (labels[n:] == IGNORE_INDEX).all()
        if n < spec.target_len:
            assert labels[n - 1] == tok.eos_id
        prompt = data.encoder_tokenizer.decode(b["input_ids"][i][am[i] == 1])
        lang_name = {
            "en": "English",
            "de": "German",
            "fr": "French",
            "es": "Spanish",
            "ru": "Russian",
            "zh": "Chinese",
        }[b["lang"][i]]
        assert prompt.startswith(f"The target language is {lang_name}.")


def test_prompts_and_targets_are_truncated(data: PreparedData) -> None:
    img = np.zeros((64, 64, 3), np.uint8)
    long = Sample("translate", "de", img, "word " * 100, "", "Wort " * 100)
    b = data.collate([long])
    assert b["attention_mask"].sum() == data.spec.prompt_len
    assert (b["labels"] != IGNORE_INDEX).sum() == data.spec.target_len  # truncated: no EOS fits


def test_coverage_and_balance_over_100k_draws(data: PreparedData) -> None:
    stream = data.train_stream()
    pairs = data.spec.pairs()
    assert len(pairs) == 7
    # next_pairs walks the same pair_at() that next_samples renders from; check that on real samples first.
    rendered = [s.pair for s in data.train_stream().next_samples(300)]
    assert rendered == stream.next_pairs(300)
    counts = Counter(stream.next_pairs(100_000 - 300)) + Counter(rendered)
    assert sum(counts.values()) == 100_000
    assert set(counts) == set(pairs)
    for (task, lang), n in counts.items():
        assert task == "translate" or lang in ("en", "de"), (task, lang)
        assert abs(n / 100_000 - 1 / 7) < 0.01 / 7, (task, lang, n)  # within 1 % (relative) of uniform
    assert not any(t == "caption" and lang in ("fr", "es", "ru", "zh") for t, lang in rendered)


def test_coverage_is_configurable(data: PreparedData) -> None:
    spec = DataSpec(caption_languages=("en", "de", "fr"), translation_languages=("es",))
    stream = SyntheticStream(spec, data.tokenizer, seed=3)
    counts = Counter(stream.next_pairs(4000))
    assert set(counts) == {("caption", "en"), ("caption", "de"), ("caption", "fr"), ("translate", "es")}
    assert max(counts.values()) - min(counts.values()) <= 1


def test_same_seed_same_samples_other_seed_differs(data: PreparedData) -> None:
    assert_batches_equal(data.train_stream(seed=5).next_batch(24), data.train_stream(seed=5).next_batch(24))
    other = data.train_stream(seed=6).next_batch(24)
    assert not torch.equal(data.train_stream(seed=5).next_batch(24)["pixel_values"], other["pixel_values"])


def test_restoring_state_replays_the_next_1000_samples(data: PreparedData) -> None:
    a = data.train_stream(seed=9, rank=1, world_size=2)
    a.next_samples(137)
    state = json.loads(json.dumps(a.state_dict()))  # must survive a checkpoint's JSON
    expected = a.next_samples(1000)
    b = data.train_stream(seed=9, rank=1, world_size=2)
    b.load_state_dict(state)
    assert same_samples(b.next_samples(1000), expected)
    assert b.state_dict() == a.state_dict()
    c = data.train_stream(seed=9, rank=1, world_size=2)
    c.load_state_dict(state)
    assert_batches_equal(c.next_batch(8), data.collate(expected[:8]))
    with pytest.raises(ValueError, match="world_size"):
        data.train_stream(seed=9, rank=1, world_size=4).load_state_dict(state)


def test_ranks_draw_disjoint_interleaved_shares(data: PreparedData) -> None:
    r0 = data.train_stream(seed=2, rank=0, world_size=2).next_samples(60)
    r1 = data.train_stream(seed=2, rank=1, world_size=2).next_samples(60)
    assert not same_samples(r0, r1)
    assert sum(np.array_equal(x.image, y.image) for x, y in zip(r0, r1, strict=True)) == 0
    # Together the ranks are exactly the single-process stream: global sample g = j * world + rank.
    single = data.train_stream(seed=2).next_samples(120)
    assert same_samples(single[0::2], r0) and same_samples(single[1::2], r1)
    with pytest.raises(ValueError):
        data.train_stream(rank=2, world_size=2)


def test_decoder_prefix_is_given_but_not_scored(data: PreparedData) -> None:
    spec = DataSpec(decoder_prefix=True)
    tok = data.tokenizer
    # Same tokenizers; only the prefix flag differs.
    pd = PreparedData(spec, data.directory, tok, data.encoder_tokenizer)
    stream = pd.train_stream(seed=4)
    samples = stream.next_samples(40)
    b = pd.collate(samples)
    n_caption = 0
    for i, s in enumerate(samples):
        if s.task == "caption":
            n_caption += 1
            k = len(tok.encode(s.prefix))
            assert s.prefix in ("The image shows", "Das Bild zeigt") and k > 0
            assert (b["labels"][i, :k] == IGNORE_INDEX).all()  # prefix not scored
            assert tok.decode(b["decoder_input_ids"][i, 1 : k + 1]) == s.prefix  # ... but fed to the decoder
            scored = tok.decode(b["labels"][i][b["labels"][i] != IGNORE_INDEX]).strip()
            assert scored and s.body.strip().startswith(scored)
        else:
            assert s.prefix == "" and b["labels"][i, 0] != IGNORE_INDEX
    assert n_caption > 0
    uc = pd.heldout().samples(("caption", "es"))
    assert all(s.prefix == "La imagen muestra" for s in uc)
    assert (pd.heldout().all_batches(64)[("caption", "zh")][0]["labels"][:, 0] == IGNORE_INDEX).all()
    # Without the flag nothing is masked at the start.
    assert (data.heldout().all_batches(64)[("caption", "zh")][0]["labels"][:, 0] != IGNORE_INDEX).all()


def test_heldout_sets_are_fixed_grouped_and_disjoint(data: PreparedData, tmp_path: Path) -> None:
    ho = data.heldout()
    assert ho.pairs == (
        ("caption", "en"),
        ("caption", "de"),
        ("caption", "es"),
        ("caption", "zh"),
        ("translate", "es"),
        ("translate", "zh"),
    )
    assert ho.group_of(("caption", "es")) == "UC" and ho.group_of(("translate", "zh")) == "ST"
    assert not ho.is_trained(("caption", "zh")) and ho.is_trained(("caption", "de"))
    again = prepare(data.spec, data.directory.parent).heldout()  # a fresh object, same sets
    for pair in ho.pairs:
        assert ho.num_samples(pair) == data.spec.heldout_per_pair
        for x, y in zip(ho.batches(pair, 24), again.batches(pair, 24), strict=True):
            assert_batches_equal(x, y)
        assert all(s.pair == pair for s in ho.samples(pair))
    # Same scenes in every pair's set (directly comparable losses).
    assert [s.key for s in ho.samples(("caption", "en"))] == [s.key for s in ho.samples(("caption", "zh"))]
    held = {s.key for s in ho.samples(("caption", "en"))}
    assert all(is_heldout_key(k) for k in held)
    train_keys = {s.key for s in data.train_stream(seed=0).next_samples(3000)}
    assert not held & train_keys and not any(is_heldout_key(k) for k in train_keys)
    # Every group pair is evaluable, trained or not (here: French captions in a custom group).
    spec = DataSpec(groups={"UC": (("caption", "fr"),)}, heldout_per_pair=5)
    pd = PreparedData(spec, tmp_path, data.tokenizer, data.encoder_tokenizer)
    assert len(pd.heldout().samples(("caption", "fr"))) == 5


def test_prepare_reuses_the_directory(data: PreparedData) -> None:
    before = (data.directory / "tokenizer.json").stat().st_mtime_ns
    again = prepare(data.spec, data.directory.parent)
    assert again.directory == data.directory
    assert (data.directory / "tokenizer.json").stat().st_mtime_ns == before
    assert data.manifest["tokenizer"]["vocab_size"] == data.tokenizer.vocab_size
    other = DataSpec(heldout_per_pair=8)
    assert prepare(other, data.directory.parent).directory != data.directory


def test_batch_generation_speed(data: PreparedData) -> None:
    stream = data.train_stream(seed=8)
    stream.next_batch(32)  # warm the sprite cache
    times = []
    for _ in range(15):
        t = time.perf_counter()
        stream.next_batch(32)
        times.append(time.perf_counter() - t)
    print(f"batch of 32 at 64x64: min {min(times) * 1e3:.1f} ms, median {np.median(times) * 1e3:.1f} ms")
    assert min(times) < 0.05
