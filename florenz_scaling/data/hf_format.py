"""Local Hugging Face tokenizer directories, in the two formats the checkpoints we use ship.

- ``tokenizer.json`` (Gemma-2, and every directory we write): read by ``tokenizers`` directly.
- BART's ``vocab.json`` + ``merges.txt`` (Florence-2 / BART as transformers' ``BartTokenizer`` saves them):
  a byte-level BPE rebuilt here, with the added tokens of ``added_tokens.json`` and of
  ``tokenizer_config.json``'s ``added_tokens_decoder`` at their recorded ids.

``vocab_size_of`` reads only JSON, so launch checks can size a vocabulary without importing ``tokenizers``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# transformers' names of special roles: every token named by one of these is special (skipped on decode).
_SPECIAL_KEYS = ("bos_token", "eos_token", "pad_token", "unk_token", "mask_token", "cls_token", "sep_token")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def tokenizer_config(directory: Path) -> dict[str, Any]:
    """``special_tokens_map.json`` overlaid with ``tokenizer_config.json`` (either may be absent)."""
    out: dict[str, Any] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):  # later files win
        if (directory / name).is_file():
            out.update(_read_json(directory / name))
    return out


def token_name(value: Any) -> str | None:
    """A token given as a string or as transformers' serialised ``AddedToken`` dict."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def is_bart_format(directory: Path) -> bool:
    """Whether ``directory`` holds BART's files and no ``tokenizer.json`` (which would take precedence)."""
    return (
        not (directory / "tokenizer.json").is_file()
        and (directory / "vocab.json").is_file()
        and (directory / "merges.txt").is_file()
    )


def _added_tokens(directory: Path, config: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """id -> AddedToken fields, from ``added_tokens.json`` and ``added_tokens_decoder`` (the latter wins)."""
    specials = {token_name(config.get(k)) for k in _SPECIAL_KEYS}
    specials |= {token_name(t) for t in config.get("additional_special_tokens") or ()}
    out: dict[int, dict[str, Any]] = {}
    if (directory / "added_tokens.json").is_file():
        for content, i in _read_json(directory / "added_tokens.json").items():
            out[int(i)] = {"content": content, "special": content in specials}
    for i, fields in (config.get("added_tokens_decoder") or {}).items():
        out[int(i)] = {"special": fields.get("content") in specials} | fields
    return out


def _merges(path: Path) -> list[tuple[str, str]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line or line.startswith("#version"):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise ValueError(f"{path}:{n}: a merge is two tokens separated by one space, got {line!r}")
        out.append((parts[0], parts[1]))
    return out


def load_bart(directory: Path) -> Any:
    """A ``tokenizers.Tokenizer`` equal to transformers' ``BartTokenizer`` of ``directory`` (without its
    ``<s> … </s>`` post-processing: the collator places specials itself)."""
    import tokenizers
    from tokenizers import decoders, models, pre_tokenizers

    config = tokenizer_config(directory)
    vocab = {str(k): int(v) for k, v in _read_json(directory / "vocab.json").items()}
    # No unk_token in the model, as transformers' converter builds BART's: byte-level BPE never needs one.
    tok = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=_merges(directory / "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=bool(config.get("add_prefix_space", False)))
    tok.decoder = decoders.ByteLevel()
    added = _added_tokens(directory, config)
    # Special tokens already in vocab.json (<s> <pad> </s> <unk> <mask>) must be registered too, or decoding
    # would not skip them.
    for key in _SPECIAL_KEYS:
        name = token_name(config.get(key))
        if name is not None and name in vocab and vocab[name] not in added:
            added[vocab[name]] = {"content": name, "special": True}
    for i in sorted(added):  # in id order: a token not in vocab.json gets the next free id
        f = added[i]
        token = tokenizers.AddedToken(
            f["content"],
            single_word=bool(f.get("single_word", False)),
            lstrip=bool(f.get("lstrip", False)),
            rstrip=bool(f.get("rstrip", False)),
            normalized=bool(f.get("normalized", not f["special"])),
            special=bool(f["special"]),
        )
        (tok.add_special_tokens if f["special"] else tok.add_tokens)([token])
        if tok.token_to_id(f["content"]) != i:
            raise ValueError(
                f"{directory}: added token {f['content']!r} has id {i} in the tokenizer files but lands on "
                f"{tok.token_to_id(f['content'])}: the added-token ids must continue vocab.json without gaps"
            )
    return tok


def vocab_size_of(directory: str | Path) -> int:
    """Number of ids an embedding needs for the tokenizer in ``directory`` (largest id + 1, added tokens
    included), read from ``tokenizer.json`` or BART's ``vocab.json`` + added tokens with ``json`` only."""
    directory = Path(directory)
    ids: list[int] = []
    if (directory / "tokenizer.json").is_file():
        data = _read_json(directory / "tokenizer.json")
        vocab = (data.get("model") or {}).get("vocab") or {}
        # Unigram stores [piece, score] pairs whose index is the id; BPE and the others a token -> id map.
        ids.append(len(vocab) - 1 if isinstance(vocab, list) else max(vocab.values(), default=-1))
        ids.extend(int(t["id"]) for t in data.get("added_tokens") or ())
    elif is_bart_format(directory):
        ids.append(max(_read_json(directory / "vocab.json").values(), default=-1))
        ids.extend(_added_tokens(directory, tokenizer_config(directory)))
    else:
        raise FileNotFoundError(missing_message(directory))
    return max(ids) + 1


def missing_message(directory: Path) -> str:
    """Why ``directory`` is not a tokenizer directory."""
    return (
        f"{directory / 'tokenizer.json'} does not exist, nor do vocab.json + merges.txt: a tokenizer "
        "directory holds a Hugging Face tokenizer.json (e.g. a local copy of Gemma-2's) or BART's "
        "vocab.json + merges.txt (Florence-2's)"
    )
