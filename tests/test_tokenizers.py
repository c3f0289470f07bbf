"""Two tokenizers: BART- and Gemma-format directories, prompts vs targets in collate, decoder pieces, the
English-only encoder tokenizer, and prepared directories holding both."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizer_dirs import FLORENCE_ADDED, write_bart_dir, write_gemma_dir

from florenz_scaling.data import (
    Sample,
    Tokenizer,
    collate,
    decoder_pieces,
    prepare,
    train_english_tokenizer,
    train_tokenizer,
    vocab_size_of,
)
from florenz_scaling.data.language import describe
from florenz_scaling.data.tokenizer import corpus, english_corpus
from florenz_scaling.data.world import sample_scene
from florenz_scaling.spec import LANGUAGES, DataSpec

TEXTS = [
    "Das Bild zeigt einen großen roten Kreis links.",
    "The target language is German. Translate the following text: a small blue star at the top.",
    "Ünbekannte Wörter ✓ 😀",
    "左边有一个红色的大圆形",
]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tok")
    texts = list(itertools.islice(corpus(LANGUAGES, 1), 3000))
    return {"bart": write_bart_dir(root / "bart", texts), "gemma": write_gemma_dir(root / "gemma", texts)}


def test_bart_format_loads_like_transformers_and_round_trips(dirs: dict[str, Path]) -> None:
    from transformers import BartTokenizer

    assert not (dirs["bart"] / "tokenizer.json").exists()
    tok = Tokenizer.load(dirs["bart"])
    hf = BartTokenizer.from_pretrained(str(dirs["bart"]), local_files_only=True)
    assert (tok.bos_id, tok.pad_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
    assert tok.vocab_size == vocab_size_of(dirs["bart"]) == len(hf)
    vocab = json.loads((dirs["bart"] / "vocab.json").read_text())
    for i, added in enumerate(FLORENCE_ADDED):  # Florence-2's added tokens continue vocab.json
        assert tok.tok.token_to_id(added) == len(vocab) + i
    for text in [*TEXTS, f"a red circle {FLORENCE_ADDED[0]} on the left"]:
        ids = tok.encode(text)
        assert ids == hf(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
    assert tok.decode([0, *tok.encode("a red circle"), 2, 1, 1]) == "a red circle"  # specials skipped


def test_gemma_format_loads_and_round_trips(dirs: dict[str, Path]) -> None:
    tok = Tokenizer.load(dirs["gemma"])
    assert (tok.pad_id, tok.eos_id, tok.bos_id, tok.unk_id) == (0, 1, 2, 3)
    assert tok.vocab_size == vocab_size_of(dirs["gemma"])
    for text in TEXTS:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
    # Characters the BPE never saw go through the byte tokens <0x00>..<0xFF> (ids 4..259), not <unk>.
    assert all(4 <= i < 260 for i in tok.encode("😀")) and tok.unk_id not in tok.encode("😀")


def test_vocab_size_of_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        vocab_size_of(tmp_path)
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        Tokenizer.load(tmp_path)


def _sample(prompt: str, prefix: str, body: str) -> Sample:
    return Sample("caption", "de", np.zeros((32, 32, 3), dtype=np.uint8), prompt, prefix, body)


def test_collate_prompts_with_the_prompt_tokenizer_targets_with_the_target_one(dirs: dict[str, Path]) -> None:
    bart, gemma = Tokenizer.load(dirs["bart"]), Tokenizer.load(dirs["gemma"])
    prompt, prefix, body = (
        "The target language is German. What does the image describe?",
        "Das Bild",
        " zeigt",
    )
    b = collate([_sample(prompt, prefix, body)], gemma, 48, 40, prompt_tokenizer=bart)
    p = bart.encode(prompt)
    assert p != gemma.encode(prompt)  # the two vocabularies really differ on this text
    assert b["input_ids"][0, : len(p)].tolist() == p
    assert (b["input_ids"][0, len(p) :] == bart.pad_id).all() and bart.pad_id == 1  # BART's pad, not Gemma's
    assert int(b["attention_mask"][0].sum()) == len(p)
    y = gemma.encode(prefix) + gemma.encode(body) + [gemma.eos_id]
    assert len(y) < 40 and len(p) < 48  # nothing truncated
    assert b["decoder_input_ids"][0, : len(y)].tolist() == [gemma.bos_id, *y[:-1]]
    assert (b["decoder_input_ids"][0, len(y) :] == gemma.pad_id).all()
    k = len(gemma.encode(prefix))
    assert b["labels"][0, k : len(y)].tolist() == y[k:]
    # Without a prompt tokenizer the target one reads prompts too (one vocabulary).
    one = collate([_sample(prompt, prefix, body)], gemma, 48, 40)
    assert one["input_ids"][0, : len(gemma.encode(prompt))].tolist() == gemma.encode(prompt)
    assert torch.equal(one["labels"], b["labels"])


def test_decoder_pieces_by_hand(dirs: dict[str, Path]) -> None:
    bart, gemma = Tokenizer.load(dirs["bart"]), Tokenizer.load(dirs["gemma"])
    pieces = decoder_pieces(gemma, bart)
    assert len(pieces) == gemma.vocab_size
    # Specials map to the source's: Gemma <pad>=0 <eos>=1 <bos>=2 <unk>=3, BART <s>=0 <pad>=1 </s>=2 <unk>=3.
    assert pieces[:4] == [[1], [2], [0], [3]]
    assert pieces[gemma.tok.token_to_id("<start_of_turn>")] == []  # another special: no text
    assert pieces[gemma.tok.token_to_id("<0xC3>")] == []  # half of a UTF-8 character
    assert pieces[gemma.tok.token_to_id("<0x41>")] == [bart.tok.token_to_id("A")]
    g, v = gemma.tok.token_to_id, bart.tok.token_to_id
    # "▁language" decodes to " language"; BART's byte-level spells the space "Ġ" and learned the word.
    assert pieces[g("▁language")] == [v("Ġlanguage")]
    assert pieces[g("▁text:")] == [v("Ġtext"), v(":")]  # BART splits off the colon
    # "ß" is one Gemma piece; in BART's byte-level alphabet its UTF-8 bytes C3 9F are "Ã" "Ł".
    assert pieces[g("ß")] == ([v("ÃŁ")] if v("ÃŁ") is not None else [v("Ã"), v("Ł")])
    # Same tokenizer on both sides: every ordinary token is its own piece.
    same = decoder_pieces(bart, bart)
    assert same[v("Ġlanguage")] == [v("Ġlanguage")] and same[:4] == [[0], [1], [2], [3]]


def test_english_only_tokenizer_learned_no_other_language() -> None:
    seed = DataSpec().seed
    english = train_english_tokenizer(LANGUAGES, 1024, seed)
    multi = train_tokenizer(LANGUAGES, 1024, seed)
    assert english.to_json() == train_english_tokenizer(LANGUAGES, 1024, seed).to_json()  # deterministic
    assert [english.tok.id_to_token(i) for i in range(4)] == ["<pad>", "<s>", "</s>", "<unk>"]
    assert all(text.isascii() for text in itertools.islice(english_corpus(LANGUAGES, seed), 5000))
    # Every learned merge is English: a merged token decodes to ASCII (German, French, ... words would not).
    merged = [i for i in range(4, english.vocab_size) if len(english.tok.id_to_token(i)) > 1]
    assert merged and all(english.decode([i]).isascii() for i in merged)
    assert english.tok.token_to_id("ĠKreis") is None and multi.tok.token_to_id("ĠKreis") is not None
    scene = sample_scene(np.random.default_rng(3), "heldout")
    german = "".join(describe(scene.objects, "de", True))
    en = "".join(describe(scene.objects, "en", True))
    assert len(english.encode(german)) > len(multi.encode(german))
    assert len(english.encode(en)) <= len(multi.encode(en))
    assert english.decode(english.encode(german)) == german


def _files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def test_prepared_directory_holds_both_tokenizers_deterministically(tmp_path: Path) -> None:
    spec = DataSpec(vocab_size=512, heldout_per_pair=4)
    a, b = prepare(spec, tmp_path / "a"), prepare(spec, tmp_path / "b")
    files = _files(a.directory)
    assert sorted(files) == [
        "data.json",
        "encoder/tokenizer.json",
        "encoder/tokenizer_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert files == _files(b.directory)  # byte-identical
    m = a.manifest
    assert (m["tokenizer"]["source"], m["encoder_tokenizer"]["source"]) == ("trained", "trained-english")
    assert m["encoder_tokenizer"]["vocab_size"] == a.encoder_tokenizer.vocab_size <= 512
    assert m["encoder_tokenizer"]["sha1"] != m["tokenizer"]["sha1"]
    assert a.encoder_tokenizer.to_json() == train_english_tokenizer(spec.languages, 512, spec.seed).to_json()
    batch = a.train_stream().next_batch(4)
    assert (batch["input_ids"] < a.encoder_tokenizer.vocab_size).all()


def test_spec_with_both_tokenizer_directories(dirs: dict[str, Path], tmp_path: Path) -> None:
    spec = DataSpec(tokenizer=str(dirs["gemma"]), encoder_tokenizer=str(dirs["bart"]), heldout_per_pair=3)
    data = prepare(spec, tmp_path)
    bart, gemma = Tokenizer.load(dirs["bart"]), Tokenizer.load(dirs["gemma"])
    assert data.encoder_tokenizer.to_json() == bart.to_json() and data.tokenizer.to_json() == gemma.to_json()
    assert (data.encoder_tokenizer.pad_id, data.encoder_tokenizer.bos_id) == (1, 0)
    m = data.manifest
    assert m["encoder_tokenizer"]["source"] == str(dirs["bart"])
    assert m["encoder_tokenizer"]["vocab_size"] == vocab_size_of(dirs["bart"])
    assert m["tokenizer"]["vocab_size"] == vocab_size_of(dirs["gemma"])
    ho = data.heldout()
    assert ho.prompt_tokenizer is data.encoder_tokenizer and ho.tokenizer is data.tokenizer
    pair = ("caption", "es")
    batch = next(ho.batches(pair, 3))
    for i, s in enumerate(ho.samples(pair)):
        p = bart.encode(s.prompt)
        assert batch["input_ids"][i].tolist() == p + [bart.pad_id] * (spec.prompt_len - len(p))
        y = (gemma.encode(s.body) + [gemma.eos_id])[: spec.target_len]
        assert batch["labels"][i, : len(y)].tolist() == y
        assert int(batch["decoder_input_ids"][i, 0]) == gemma.bos_id == 2
    # Only data.tokenizer given: the encoder reads prompts with it too (one vocabulary).
    one = prepare(DataSpec(tokenizer=str(dirs["gemma"]), heldout_per_pair=3), tmp_path)
    assert one.encoder_tokenizer.to_json() == one.tokenizer.to_json()
    assert one.manifest["encoder_tokenizer"]["source"] == "data.tokenizer"


def test_sweep_checks_trained_tokenizers_against_encoder_and_decoder_vocabularies(tmp_path: Path) -> None:
    import yaml

    from florenz_scaling.spec import SpecError, load_sweep

    sweeps = Path(__file__).resolve().parents[1] / "sweeps"
    paper = yaml.safe_load((sweeps / "florenz_paper.yaml").read_text())
    del paper["data"]["tokenizer"], paper["data"]["encoder_tokenizer"]
    # 60,000 ids fit every decoder (257,024 / 256,000) but not F-0.4B's encoder (51,328): the trained
    # English-only encoder tokenizer is refused, naming the field.
    paper["data"]["vocab_size"] = 60_000
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(paper))
    with pytest.raises(SpecError, match="encoder vocabulary of size F-0.4B") as err:
        load_sweep(path)
    assert err.value.field_path == "data.vocab_size"
    # A given encoder tokenizer is sized where it is read (vocab_size_of), not against data.vocab_size.
    paper["data"]["encoder_tokenizer"] = str(tmp_path / "florence-2-tokenizer")
    path.write_text(yaml.safe_dump(paper))
    assert load_sweep(path).data.encoder_tokenizer == str(tmp_path / "florence-2-tokenizer")
    paper["data"]["vocab_size"] = 300_000  # the trained target tokenizer must fit every decoder
    path.write_text(yaml.safe_dump(paper))
    with pytest.raises(SpecError, match="decoder vocabulary"):
        load_sweep(path)
