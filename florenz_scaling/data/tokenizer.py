"""The one decoder tokenizer every model size shares, so losses are comparable across sizes.

Two sources, one wrapper (``Tokenizer``):

- CPU runs: ``train_tokenizer`` fits a byte-level BPE (Hugging Face ``tokenizers``) on a corpus generated
  from the synthetic world — every language in the spec, both description styles, both prompt kinds — with
  special tokens ``<pad> <s> </s> <unk>`` at ids 0-3. Training is deterministic: the same spec gives a
  byte-identical ``tokenizer.json``. The BPE may stop short of ``vocab_size`` when the world's words run out;
  ``Tokenizer.vocab_size`` is the real size.
- Real runs: ``Tokenizer.load(dir)`` reads a local Hugging Face tokenizer directory (e.g. Gemma-2's
  ``tokenizer.json`` with ``tokenizer_config.json``/``special_tokens_map.json``); nothing is downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from florenz_scaling.data.language import (
    LANGUAGE_NAMES,
    caption_prompt,
    describe,
    translation_prompt,
)
from florenz_scaling.data.world import draw_scene
from florenz_scaling.files import write_atomic

SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
# Names a special token goes by in common Hugging Face tokenizers, tried when no config names it.
_CANDIDATES = {
    "pad": ("<pad>", "[PAD]", "<|pad|>", "<|finetune_right_pad_id|>"),
    "bos": ("<s>", "<bos>", "[CLS]", "<|begin_of_text|>", "<|startoftext|>"),
    "eos": ("</s>", "<eos>", "[SEP]", "<|end_of_text|>", "<|endoftext|>"),
    "unk": ("<unk>", "[UNK]"),
}
_CORPUS_STREAM = 3  # RNG stream id of the tokenizer corpus (train = 1, held-out = 2)


class Tokenizer:
    """A ``tokenizers.Tokenizer`` plus the special ids the data pipeline needs; never adds specials itself."""

    def __init__(
        self, tok: tokenizers.Tokenizer, pad_id: int, bos_id: int, eos_id: int, unk_id: int | None = None
    ) -> None:
        self.tok = tok
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = pad_id, bos_id, eos_id, unk_id

    @property
    def vocab_size(self) -> int:
        """Number of ids the model's embedding must hold (added tokens included)."""
        return self.tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without BOS/EOS (the collator places those)."""
        return self.tok.encode(text, add_special_tokens=False).ids

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        """``encode`` for many texts.

        Deliberately one text at a time: ``encode_batch`` is no faster for batch-sized inputs and starts the
        Rayon thread pool, after which forked DataLoader workers warn and lose tokenizer parallelism.
        """
        encode = self.tok.encode
        return [encode(t, add_special_tokens=False).ids for t in texts]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text of ``ids``; padding, BOS and EOS are dropped unless ``skip_special_tokens`` is false."""
        return self.tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def to_json(self) -> str:
        """The ``tokenizer.json`` text (stable for a given tokenizer)."""
        return self.tok.to_str(pretty=True)

    def save(self, directory: str | Path) -> None:
        """Write ``tokenizer.json`` and a ``tokenizer_config.json`` naming the specials, each atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        names = {
            k: self.tok.id_to_token(v)
            for k, v in (
                ("pad", self.pad_id),
                ("bos", self.bos_id),
                ("eos", self.eos_id),
                ("unk", self.unk_id),
            )
            if v is not None
        }
        # tokenizer_class lets transformers' AutoTokenizer read the directory too.
        config = {f"{k}_token": v for k, v in names.items()} | {"tokenizer_class": "PreTrainedTokenizerFast"}
        write_atomic(directory / "tokenizer.json", self.to_json())
        write_atomic(directory / "tokenizer_config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> Tokenizer:
        """Read a local tokenizer directory (ours or a Hugging Face one such as Gemma-2's)."""
        directory = Path(directory)
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist: data.tokenizer must name a directory holding a "
                "Hugging Face tokenizer.json (e.g. a local copy of Gemma-2's tokenizer)"
            )
        tok = tokenizers.Tokenizer.from_file(str(path))
        named = _configured_specials(directory)
        ids: dict[str, int | None] = {}
        for role, candidates in _CANDIDATES.items():
            names = ([named[role]] if role in named else []) + list(candidates)
            ids[role] = next((i for i in (tok.token_to_id(n) for n in names) if i is not None), None)
        if ids["eos"] is None:
            raise ValueError(
                f"{path}: found no end-of-sequence token (tried {_CANDIDATES['eos']}); "
                "name it as eos_token in tokenizer_config.json"
            )
        eos = ids["eos"]
        # Tokenizers without a pad (or BOS) token reuse EOS: padding is masked from the loss anyway.
        pad = ids["pad"] if ids["pad"] is not None else eos
        bos = ids["bos"] if ids["bos"] is not None else eos
        return cls(tok, pad, bos, eos, ids["unk"])


def _configured_specials(directory: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):  # later files win
        f = directory / name
        if not f.is_file():
            continue
        data: dict[str, Any] = json.loads(f.read_text())
        for role in _CANDIDATES:
            value = data.get(f"{role}_token")
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str):
                out[role] = value
    return out


def corpus(languages: Sequence[str], seed: int, scenes: int = 1000) -> Iterator[str]:
    """Text the synthetic tokenizer is trained on: descriptions, caption and translation prompts.

    It covers every language of the world regardless of task coverage, so a coverage ablation (e.g. adding
    French captions) keeps the same tokenizer and comparable losses.
    """
    rng = np.random.default_rng([seed, _CORPUS_STREAM])
    langs = [lang for lang in languages if lang in LANGUAGE_NAMES]
    for _ in range(scenes):
        scene = draw_scene(rng)  # both splits: the tokenizer must cover the held-out words too
        for framed in (False, True):
            texts = {lang: "".join(describe(scene.objects, lang, framed)) for lang in langs}
            yield from texts.values()
            if "en" in texts:
                for lang in langs:
                    if lang != "en":
                        yield translation_prompt(lang, texts["en"])
        for lang in langs:
            yield caption_prompt(lang)


def train_tokenizer(languages: Sequence[str], vocab_size: int, seed: int) -> Tokenizer:
    """Byte-level BPE trained on the world's corpus; ids 0-3 are ``<pad> <s> </s> <unk>``."""
    tok = tokenizers.Tokenizer(models.BPE())
    # Byte-level: any text (names, digits, other scripts in WebDataset annotations) is encodable.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(languages, seed), trainer=trainer)
    pad, bos, eos, unk = (tok.token_to_id(s) for s in SPECIALS)
    return Tokenizer(tok, pad, bos, eos, unk)
