"""The two tokenizers of a Florenz model: the encoder's (prompts) and the decoders' (targets).

As in the paper, the BART encoder keeps Florence-2's vocabulary for the prompt while every decoder shares
one target tokenizer (Gemma-2's), so losses compare across sizes. One wrapper (``Tokenizer``), three sources:

- CPU runs, target: ``train_tokenizer`` fits a byte-level BPE (Hugging Face ``tokenizers``) on a corpus
  generated from the synthetic world — every language in the spec, both description styles, both prompt
  kinds — with special tokens ``<pad> <s> </s> <unk>`` at ids 0-3.
- CPU runs, encoder: ``train_english_tokenizer`` fits the same kind of BPE on English text only (the English
  descriptions and the prompts, which are English sentences), as BART's was learned from English.
- Real runs: ``Tokenizer.load(dir)`` reads a local Hugging Face directory — ``tokenizer.json`` (Gemma-2's)
  or BART's ``vocab.json`` + ``merges.txt`` (Florence-2's); nothing is downloaded.

Training is deterministic: the same spec gives a byte-identical ``tokenizer.json``. A BPE may stop short of
``vocab_size`` when the world's words run out; ``Tokenizer.vocab_size`` is the real size.
``decoder_pieces`` maps each target token to the encoder tokenizer's pieces of its text: the paper initialises
a switched decoder row as the mean of the checkpoint's embeddings of those pieces.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from florenz_scaling.data.hf_format import (
    is_bart_format,
    load_bart,
    missing_message,
    token_name,
    tokenizer_config,
    vocab_size_of,
)
from florenz_scaling.data.language import (
    LANGUAGE_NAMES,
    caption_prompt,
    describe,
    translation_prompt,
)
from florenz_scaling.data.world import draw_scene
from florenz_scaling.files import write_atomic

__all__ = [
    "SPECIALS",
    "Tokenizer",
    "corpus",
    "decoder_pieces",
    "english_corpus",
    "train_english_tokenizer",
    "train_tokenizer",
    "vocab_size_of",
]

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
        """Read a local tokenizer directory: ours, Gemma-2's (``tokenizer.json``) or BART's (``vocab.json`` +
        ``merges.txt``, used only when there is no ``tokenizer.json``)."""
        directory = Path(directory)
        path = directory / "tokenizer.json"
        if path.is_file():
            tok = tokenizers.Tokenizer.from_file(str(path))
        elif is_bart_format(directory):
            tok = load_bart(directory)
        else:
            raise FileNotFoundError(missing_message(directory))
        config = tokenizer_config(directory)
        named = {r: n for r in _CANDIDATES if (n := token_name(config.get(f"{r}_token"))) is not None}
        ids: dict[str, int | None] = {}
        for role, candidates in _CANDIDATES.items():
            names = ([named[role]] if role in named else []) + list(candidates)
            ids[role] = next((i for i in (tok.token_to_id(n) for n in names) if i is not None), None)
        if ids["eos"] is None:
            raise ValueError(
                f"{directory}: found no end-of-sequence token (tried {_CANDIDATES['eos']}); "
                "name it as eos_token in tokenizer_config.json"
            )
        eos = ids["eos"]
        # Tokenizers without a pad (or BOS) token reuse EOS: padding is masked from the loss anyway.
        pad = ids["pad"] if ids["pad"] is not None else eos
        bos = ids["bos"] if ids["bos"] is not None else eos
        return cls(tok, pad, bos, eos, ids["unk"])


def decoder_pieces(target: Tokenizer, source: Tokenizer) -> list[list[int]]:
    """For every target id, the ``source`` ids of that token's text (for a decoder's vocabulary switch).

    A target token is decoded on its own and its text encoded by ``source`` without specials. The special
    roles map to ``source``'s (bos→bos, eos→eos, pad→pad, unk→unk; where one id plays several roles, eos wins,
    then bos), as one-element lists. Tokens with no text get ``[]``: other special tokens (decoding skips
    them), and byte tokens that are only part of a UTF-8 character, which decode to U+FFFD — replacement
    characters are dropped before encoding, so a token whose only text is one gets ``[]``.
    """
    roles: dict[int, list[int]] = {}
    for role in ("unk", "pad", "bos", "eos"):  # later roles win a shared id (pad = eos when there is no pad)
        t, s = getattr(target, f"{role}_id"), getattr(source, f"{role}_id")
        if t is not None:
            roles[t] = [s] if s is not None else []
    # One token at a time on purpose: the batch calls start tokenizers' thread pool (see ``encode_many``).
    decode, encode = target.tok.decode, source.tok.encode
    out: list[list[int]] = []
    for i in range(target.vocab_size):
        if i in roles:
            out.append(list(roles[i]))
            continue
        text = decode([i], skip_special_tokens=True).replace("\ufffd", "")
        out.append(encode(text, add_special_tokens=False).ids if text else [])
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


def english_corpus(languages: Sequence[str], seed: int, scenes: int = 1000) -> Iterator[str]:
    """Text the English-only (encoder) tokenizer is trained on: the English descriptions of the same scenes
    as ``corpus`` in both styles, and every prompt (English sentences naming the languages of the world)."""
    rng = np.random.default_rng([seed, _CORPUS_STREAM])
    langs = [lang for lang in languages if lang in LANGUAGE_NAMES]
    for _ in range(scenes):
        scene = draw_scene(rng)
        for framed in (False, True):
            english = "".join(describe(scene.objects, "en", framed))
            yield english
            for lang in langs:
                if lang != "en":
                    yield translation_prompt(lang, english)
        for lang in langs:
            yield caption_prompt(lang)


def _train_bpe(texts: Iterator[str], vocab_size: int) -> Tokenizer:
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
    tok.train_from_iterator(texts, trainer=trainer)
    pad, bos, eos, unk = (tok.token_to_id(s) for s in SPECIALS)
    return Tokenizer(tok, pad, bos, eos, unk)


def train_tokenizer(languages: Sequence[str], vocab_size: int, seed: int) -> Tokenizer:
    """The target tokenizer: byte-level BPE on the multilingual ``corpus``; ids 0-3 are ``SPECIALS``."""
    return _train_bpe(corpus(languages, seed), vocab_size)


def train_english_tokenizer(languages: Sequence[str], vocab_size: int, seed: int) -> Tokenizer:
    """The encoder tokenizer of CPU runs: byte-level BPE on ``english_corpus`` only, like BART's (same
    specials as ``train_tokenizer``, whose ids the tiny models' configs assume)."""
    return _train_bpe(english_corpus(languages, seed), vocab_size)
