"""The WebDataset reader on shards written here: batches, balance, resumption, ranks, held-out shard."""

from __future__ import annotations

import dataclasses
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image

from florenz_scaling.data import PreparedData, WebDatasetStream, prepare
from florenz_scaling.data.language import describe
from florenz_scaling.data.world import render, sample_scene
from florenz_scaling.spec import DataSpec

PER_SHARD, SHARDS = 24, 3


def _annotation(i: int, scene: object) -> dict:
    langs = ("en", "de", "fr", "es", "ru", "zh")
    text = {lang: "".join(describe(scene.objects, lang, False)) for lang in langs}
    ann: dict = {
        "caption": {lang: text[lang] for lang in ("en", "de", "es", "zh")},
        "translation": [
            {"lang": lang, "src": text["en"], "tgt": text[lang]} for lang in ("de", "fr", "es", "ru", "zh")
        ],
    }
    if i % 3 == 0:  # some images carry only one bitext: the balancing counter must cope with partial supply
        ann = {"translation": [{"lang": "ru", "src": text["en"], "tgt": text["ru"]}]}
    return ann


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(0)
    for s in range(SHARDS):
        with wds.TarWriter(str(root / f"train-{s:04d}.tar")) as sink:
            for j in range(PER_SHARD):
                i = s * PER_SHARD + j
                scene = sample_scene(rng, "train")
                buf = io.BytesIO()
                Image.fromarray(render(scene, 48)[:, :40]).save(buf, format="PNG")  # not square, not 64
                ext = "png" if i % 2 else "jpg"
                image = buf.getvalue()
                if ext == "jpg":
                    buf = io.BytesIO()
                    Image.fromarray(render(scene, 48)).save(buf, format="JPEG")
                    image = buf.getvalue()
                sink.write({"__key__": f"{i:06d}", ext: image, "json": json.dumps(_annotation(i, scene))})
    return root


@pytest.fixture(scope="module")
def data(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> PreparedData:
    spec = DataSpec(kind="webdataset", path=str(shards), heldout_per_pair=5, vocab_size=512)
    return prepare(spec, tmp_path_factory.mktemp("prepared"))


def keys(samples: list) -> list[str]:
    return [s.key for s in samples]


def test_batches_follow_the_contract(data: PreparedData) -> None:
    stream = data.train_stream()
    assert isinstance(stream, WebDatasetStream)
    b = stream.next_batch(8)
    assert b["pixel_values"].shape == (8, 3, 64, 64) and b["pixel_values"].dtype == torch.float32
    assert b["input_ids"].shape == (8, data.spec.prompt_len)
    assert b["labels"].shape == (8, data.spec.target_len)
    assert (b["decoder_input_ids"][:, 0] == data.tokenizer.bos_id).all()
    first = data.train_stream().next_samples(8)
    for s, task, lang in zip(first, b["task"], b["lang"], strict=True):
        assert (s.task, s.lang) == (task, lang)
        assert s.body and s.image.shape == (64, 64, 3)
        if s.task == "translate":
            assert s.prompt.startswith("The target language is ")
            assert "Translate the following text: " in s.prompt


def test_balanced_over_training_pairs_only(data: PreparedData) -> None:
    pairs = data.train_stream().next_pairs(700)
    counts = Counter(pairs)
    assert set(counts) == set(data.spec.pairs())
    assert not any(t == "caption" and lang not in ("en", "de") for t, lang in counts)  # es/zh captions unused
    # A third of the images offer only ru translation; the counter skips them once ru runs ahead.
    assert max(counts.values()) - min(counts.values()) <= 3, counts
    # next_pairs and next_samples share the selection path.
    assert [s.pair for s in data.train_stream().next_samples(40)] == pairs[:40]


def test_state_restore_replays_exactly_across_epochs(data: PreparedData) -> None:
    a = data.train_stream(seed=3)
    a.next_samples(50)  # two training shards of 24: past the first epoch boundary
    state = json.loads(json.dumps(a.state_dict()))
    assert state["epoch"] >= 1
    expected = a.next_samples(60)
    b = data.train_stream(seed=3)
    b.load_state_dict(state)
    got = b.next_samples(60)
    assert keys(got) == keys(expected)
    assert all(
        x.body == y.body and x.pair == y.pair and np.array_equal(x.image, y.image)
        for x, y in zip(got, expected, strict=True)
    )
    assert b.state_dict() == a.state_dict()


def test_same_seed_same_order_and_resampling(data: PreparedData) -> None:
    first = keys(data.train_stream(seed=1).next_samples(30))
    assert first == keys(data.train_stream(seed=1).next_samples(30))
    s = data.train_stream(seed=1)
    epoch0, epoch1 = keys(s.next_samples(48)), keys(s.next_samples(48))
    s.next_samples(48)
    assert s.epoch >= 2
    assert not set(epoch0 + epoch1) & {f"{i:06d}" for i in range(2 * PER_SHARD, 3 * PER_SHARD)}  # held out


def test_ranks_take_disjoint_samples(data: PreparedData) -> None:
    s0, s1 = (data.train_stream(seed=2, rank=r, world_size=2) for r in (0, 1))
    r0, r1 = keys(s0.next_samples(10)), keys(s1.next_samples(10))
    assert s0.epoch == s1.epoch == 0 and not set(r0) & set(r1)
    # Each epoch re-deals the images to ranks, so a rank does not see the same half of the data forever.
    e0 = {s0.state_dict()["epoch"]}
    seen0 = set(r0)
    while s0.epoch < 3:
        seen0 |= set(keys(s0.next_samples(1)))
    assert e0 == {0} and len(seen0) > PER_SHARD


def test_heldout_comes_from_the_last_shard(data: PreparedData) -> None:
    ho = data.heldout()
    last = {f"{i:06d}" for i in range(2 * PER_SHARD, 3 * PER_SHARD)}
    for pair in ho.pairs:
        samples = ho.samples(pair)
        assert len(samples) == 5 and {s.key for s in samples} <= last
        assert all(s.pair == pair for s in samples)
    zh = ho.samples(("caption", "zh"))
    assert zh[0].prompt == "The target language is Chinese. What does the image describe?"
    again = prepare(data.spec, data.directory.parent).heldout()
    for pair in ho.pairs:
        for x, y in zip(ho.batches(pair, 4), again.batches(pair, 4), strict=True):
            assert torch.equal(x["labels"], y["labels"]) and torch.equal(x["pixel_values"], y["pixel_values"])
    assert ho.num_samples(("translate", "fr")) == 5  # trained but in no group: evaluable too
    with pytest.raises(KeyError):
        ho.samples(("caption", "fr"))
    missing = dataclasses.replace(data.spec, groups={"UC": (("caption", "ru"),)})
    with pytest.raises(ValueError, match="caption"):
        pd = PreparedData(missing, data.directory, data.tokenizer, data.encoder_tokenizer)
        pd.heldout().samples(("caption", "ru"))


def test_decoder_prefix_on_real_captions(data: PreparedData) -> None:
    spec = dataclasses.replace(data.spec, decoder_prefix=True)
    pd = PreparedData(spec, data.directory, data.tokenizer, data.encoder_tokenizer)
    es = pd.heldout().samples(("caption", "es"))[0]
    assert es.prefix == "La imagen muestra" and es.body.split()[0] in ("un", "una", "dos", "tres")
    b = pd.collate([es])
    k = len(data.tokenizer.encode(es.prefix))
    assert (b["labels"][0, :k] == -100).all() and (b["labels"][0, k : k + 3] != -100).all()


def test_one_shard_is_refused(shards: Path, data: PreparedData) -> None:
    spec = dataclasses.replace(data.spec, path=str(shards / "train-0000.tar"))
    with pytest.raises(ValueError, match="held out"):
        WebDatasetStream(spec, data.tokenizer, seed=0)
    brace = dataclasses.replace(data.spec, path=str(shards / "train-{0000..0002}.tar"))
    assert len(WebDatasetStream(brace, data.tokenizer, seed=0).shards) == 2


def test_a_training_pair_without_data_is_an_error(data: PreparedData) -> None:
    spec = dataclasses.replace(data.spec, caption_languages=("en", "fr"))  # no French captions in the shards
    with pytest.raises(ValueError, match="caption', 'fr"):
        WebDatasetStream(spec, data.tokenizer, seed=0).next_pairs(200)
