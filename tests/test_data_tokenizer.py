"""The shared tokenizer: BPE determinism, save/load, local Hugging Face directories, concurrent prepare."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tokenizers
from tokenizers import models, pre_tokenizers, trainers

from florenz_scaling.data import SPECIALS, Tokenizer, prepare, train_tokenizer
from florenz_scaling.data.language import describe
from florenz_scaling.data.world import sample_scene
from florenz_scaling.spec import LANGUAGES, DataSpec


@pytest.fixture(scope="module")
def trained() -> Tokenizer:
    return train_tokenizer(LANGUAGES, 512, DataSpec().seed)


def test_training_is_deterministic_and_sized(trained: Tokenizer) -> None:
    again = train_tokenizer(LANGUAGES, 512, DataSpec().seed)
    assert again.to_json() == trained.to_json()
    assert [trained.pad_id, trained.bos_id, trained.eos_id, trained.unk_id] == [0, 1, 2, 3]
    assert [trained.tok.id_to_token(i) for i in range(4)] == list(SPECIALS)
    assert 260 < trained.vocab_size <= 512


def test_roundtrip_in_every_language(trained: Tokenizer) -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        scene = sample_scene(rng, "heldout")
        for lang in LANGUAGES:
            text = "".join(describe(scene.objects, lang, scene.framed))
            ids = trained.encode(text)
            assert trained.unk_id not in ids and trained.bos_id not in ids and trained.eos_id not in ids
            assert trained.decode(ids) == text
            assert len(ids) < len(text.encode())  # merges were learned for every script
    assert trained.decode(trained.encode("Ünbekannte Wörter ✓ 😀")) == "Ünbekannte Wörter ✓ 😀"  # byte-level


def test_save_and_load(trained: Tokenizer, tmp_path: Path) -> None:
    trained.save(tmp_path)
    loaded = Tokenizer.load(tmp_path)
    assert loaded.to_json() == trained.to_json()
    assert (loaded.pad_id, loaded.bos_id, loaded.eos_id, loaded.vocab_size) == (0, 1, 2, trained.vocab_size)
    text = "Das Bild zeigt einen großen roten Kreis links."
    assert loaded.encode(text) == trained.encode(text)
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        Tokenizer.load(tmp_path / "missing")


def test_transformers_reads_the_saved_directory(trained: Tokenizer, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    trained.save(tmp_path)
    hf = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    text = "La photo montre deux petites étoiles bleues en haut."
    assert hf(text, add_special_tokens=False)["input_ids"] == trained.encode(text)
    assert (hf.pad_token_id, hf.bos_token_id, hf.eos_token_id) == (0, 1, 2)


def _gemma_like(directory: Path, specials: list[str], config: dict) -> None:
    """A small tokenizer directory with Gemma's special-token names and ids (<pad>=0, <eos>=1, <bos>=2)."""
    tok = tokenizers.Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(["the image shows a red circle", "das bild zeigt einen roten kreis"] * 5, trainer)
    directory.mkdir(parents=True, exist_ok=True)
    tok.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps(config))


def test_local_hugging_face_tokenizer_directory(tmp_path: Path) -> None:
    src = tmp_path / "gemma-tok"
    _gemma_like(
        src,
        ["<pad>", "<eos>", "<bos>", "<unk>"],
        {"bos_token": "<bos>", "eos_token": {"content": "<eos>"}, "pad_token": "<pad>"},
    )
    tok = Tokenizer.load(src)
    assert (tok.pad_id, tok.eos_id, tok.bos_id, tok.unk_id) == (0, 1, 2, 3)
    data = prepare(DataSpec(tokenizer=str(src), vocab_size=256, heldout_per_pair=4), tmp_path / "root")
    assert data.tokenizer.vocab_size == tok.vocab_size == data.manifest["tokenizer"]["vocab_size"]
    assert data.tokenizer.encode("a red circle") == tok.encode("a red circle")
    batch = data.train_stream().next_batch(4)
    assert (batch["decoder_input_ids"][:, 0] == 2).all()
    assert (batch["labels"] < tok.vocab_size).all()
    # No pad token: padding reuses EOS (it is masked from the loss anyway); the config names nothing.
    nopad = tmp_path / "nopad"
    _gemma_like(nopad, ["</s>", "<s>", "<unk>"], {})
    t = Tokenizer.load(nopad)
    assert (t.eos_id, t.bos_id, t.pad_id) == (0, 1, 0)


_PREPARE = """
import hashlib, sys
from florenz_scaling.data import prepare
from florenz_scaling.spec import DataSpec
d = prepare(DataSpec(vocab_size=512), sys.argv[1])
print(d.directory, hashlib.sha1((d.directory / 'tokenizer.json').read_bytes()).hexdigest())
"""


def test_concurrent_prepare_is_safe_and_deterministic(trained: Tokenizer, tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", _PREPARE, str(tmp_path)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len({tuple(o) for o in outs}) == 1, outs
    directory, sha = outs[0]
    # Same bytes as a tokenizer trained here, in another process: training is deterministic.
    trained.save(tmp_path / "local")
    assert hashlib.sha1((tmp_path / "local" / "tokenizer.json").read_bytes()).hexdigest() == sha
    assert sorted(p.name for p in Path(directory).iterdir()) == [
        ".lock",
        "data.json",
        "encoder",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
