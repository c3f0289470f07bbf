"""Stand-in tokenizer directories in the two formats real checkpoints ship (nothing is downloaded).

- ``write_bart_dir``: Florence-2 / BART as transformers' ``BartTokenizer.save_pretrained`` (4.x) writes it —
  ``vocab.json`` + ``merges.txt`` (byte-level BPE; ``<s>=0 <pad>=1 </s>=2 <unk>=3``, ``<mask>`` last in the
  vocabulary), ``added_tokens.json`` for Florence-2's extra tokens, ``tokenizer_config.json`` with
  ``added_tokens_decoder`` and ``special_tokens_map.json``.
- ``write_gemma_dir``: Gemma-2 — ``tokenizer.json`` (sentencepiece-style BPE: ``▁`` for spaces, byte fallback
  through ``<0x00>…<0xFF>``, ``<pad>=0 <eos>=1 <bos>=2 <unk>=3``, an added ``<start_of_turn>``) with
  ``tokenizer_config.json`` and ``special_tokens_map.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import tokenizers
from tokenizers import models, pre_tokenizers, trainers

BART_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
GEMMA_SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>")
FLORENCE_ADDED = ("<od>", "</od>")  # Florence-2 task tokens, after BART's vocabulary


def _added(content: str, special: bool, lstrip: bool = False) -> dict:
    return {
        "content": content,
        "lstrip": lstrip,
        "normalized": not special,
        "rstrip": False,
        "single_word": False,
        "special": special,
    }


def write_bart_dir(directory: Path, texts: Sequence[str], vocab_size: int = 400) -> Path:
    """A BART-format tokenizer directory learned from ``texts``."""
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        list(texts), vocab_size=vocab_size, special_tokens=list(BART_SPECIALS), show_progress=False
    )
    directory.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(directory))  # vocab.json + merges.txt ("#version: 0.2" header), as BART ships them
    vocab = json.loads((directory / "vocab.json").read_text())
    vocab["<mask>"] = len(vocab)  # BART's <mask> is the last entry of vocab.json (50264)
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    added = {tok: len(vocab) + i for i, tok in enumerate(FLORENCE_ADDED)}
    (directory / "added_tokens.json").write_text(json.dumps(added))
    decoder = {str(i): _added(t, True) for i, t in enumerate(BART_SPECIALS)}
    decoder[str(vocab["<mask>"])] = _added("<mask>", True, lstrip=True)
    decoder |= {str(i): _added(t, False) for t, i in added.items()}
    names = {
        "bos_token": "<s>",
        "cls_token": "<s>",
        "eos_token": "</s>",
        "mask_token": "<mask>",
        "pad_token": "<pad>",
        "sep_token": "</s>",
        "unk_token": "<unk>",
    }
    config = names | {
        "add_prefix_space": False,
        "added_tokens_decoder": decoder,
        "clean_up_tokenization_spaces": True,
        "errors": "replace",
        "model_max_length": 1024,
        "tokenizer_class": "BartTokenizer",
        "trim_offsets": True,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (directory / "special_tokens_map.json").write_text(json.dumps(names, indent=2))
    return directory


def write_gemma_dir(directory: Path, texts: Sequence[str], vocab_size: int = 600) -> Path:
    """A Gemma-format tokenizer directory learned from ``texts``."""
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - 256, special_tokens=list(GEMMA_SPECIALS), show_progress=False
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    data = json.loads(tok.to_str())
    # Gemma's layout: specials, then the 256 byte tokens, then the pieces (whose ids shift by 256).
    learned = sorted(data["model"]["vocab"].items(), key=lambda kv: kv[1])[len(GEMMA_SPECIALS) :]
    vocab = {t: i for i, t in enumerate(GEMMA_SPECIALS)}
    vocab |= {f"<0x{b:02X}>": len(GEMMA_SPECIALS) + b for b in range(256)}
    vocab |= {t: len(vocab) + k for k, (t, _) in enumerate(learned)}
    data["model"].update(vocab=vocab, byte_fallback=True, fuse_unk=True, unk_token="<unk>")
    data["normalizer"] = {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}
    data["pre_tokenizer"] = None
    data["decoder"] = {
        "type": "Sequence",
        "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
        ],
    }
    data["added_tokens"] = [
        {"id": i, **_added(t, True)} for i, t in enumerate(GEMMA_SPECIALS + ("<start_of_turn>",))
    ]
    data["added_tokens"][-1]["id"] = len(vocab)
    vocab["<start_of_turn>"] = len(vocab)  # Gemma keeps its chat tokens in the model vocabulary too
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False, indent=2))
    names = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"}
    config = names | {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": {
            str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in data["added_tokens"]
        },
        "tokenizer_class": "GemmaTokenizer",
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    special_map = {k: _added(v, True) for k, v in names.items()}
    (directory / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2))
    return directory
