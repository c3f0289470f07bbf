"""``prepare``: build or reuse the shared data directory of a data spec (two tokenizers + manifest).

``root/<spec hash>/`` holds the target tokenizer (``tokenizer.json`` + ``tokenizer_config.json``), the
encoder's prompt tokenizer under ``encoder/`` (the same two files) and ``data.json``, the manifest written
last as the "complete" marker. Several processes (array tasks, ranks) may call ``prepare`` at once:
the first builds under an ``fcntl`` lock, files are written to temp names and ``os.replace``d, the others
wait on the lock and reuse the result. Everything is deterministic: the same spec gives byte-identical files.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from florenz_scaling.data.collate import Sample, collate
from florenz_scaling.data.heldout import HeldOut, synthetic_heldout
from florenz_scaling.data.stream import SyntheticStream
from florenz_scaling.data.tokenizer import Tokenizer, train_english_tokenizer, train_tokenizer
from florenz_scaling.data.webdataset import WebDatasetStream, webdataset_heldout
from florenz_scaling.files import write_atomic
from florenz_scaling.spec import DataSpec, to_plain

# Bump when generation changes in a way that alters the prepared files or the samples, so caches are rebuilt.
DATA_FORMAT_VERSION = 2  # 2: the encoder's own tokenizer under encoder/
ENCODER_DIR = "encoder"
TrainStream = SyntheticStream | WebDatasetStream


def spec_hash(spec: DataSpec) -> str:
    """Stable 12-hex id of a data spec (plus the data format version): the prepared directory's name."""
    ident = json.dumps({"format": DATA_FORMAT_VERSION, "data": to_plain(spec)}, sort_keys=True)
    return hashlib.sha1(ident.encode()).hexdigest()[:12]


@dataclass
class PreparedData:
    """A prepared data directory: both tokenizers, training streams and held-out sets."""

    spec: DataSpec
    directory: Path
    tokenizer: Tokenizer  # the decoders' (targets, decoder prefix, generations)
    encoder_tokenizer: Tokenizer  # the encoder's (prompts)
    _heldout: HeldOut | None = field(default=None, repr=False)

    @property
    def manifest(self) -> dict[str, Any]:
        """The ``data.json`` written by ``prepare`` (spec, hash, tokenizer summary)."""
        return json.loads((self.directory / "data.json").read_text())

    def train_stream(self, seed: int | None = None, rank: int = 0, world_size: int = 1) -> TrainStream:
        """A fresh training stream for one rank; ``seed`` defaults to the data spec's seed."""
        seed = self.spec.seed if seed is None else seed
        return make_train_stream(self.spec, self.tokenizer, seed, rank, world_size, self.encoder_tokenizer)

    def heldout(self) -> HeldOut:
        """The held-out sets of every pair in ``spec.groups`` (one object per ``PreparedData``, memoised)."""
        if self._heldout is None:
            self._heldout = make_heldout(self.spec, self.tokenizer, self.encoder_tokenizer)
        return self._heldout

    def collate(self, samples: Sequence[Sample]) -> dict[str, Any]:
        """Collate samples with this data's tokenizers and lengths."""
        return collate(
            samples, self.tokenizer, self.spec.prompt_len, self.spec.target_len, self.encoder_tokenizer
        )


def make_train_stream(
    spec: DataSpec,
    tokenizer: Tokenizer,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    prompt_tokenizer: Tokenizer | None = None,
) -> TrainStream:
    """The training stream of ``spec.kind`` (synthetic world or WebDataset shards) for one rank; prompts in
    ``prompt_tokenizer`` (default: ``tokenizer``)."""
    cls = WebDatasetStream if spec.kind == "webdataset" else SyntheticStream
    return cls(spec, tokenizer, seed, rank, world_size, prompt_tokenizer)


def make_heldout(spec: DataSpec, tokenizer: Tokenizer, prompt_tokenizer: Tokenizer | None = None) -> HeldOut:
    """The held-out sets of ``spec.kind`` for every pair in ``spec.groups``."""
    make = webdataset_heldout if spec.kind == "webdataset" else synthetic_heldout
    return make(spec, tokenizer, prompt_tokenizer)


def build_tokenizers(spec: DataSpec) -> tuple[tuple[Tokenizer, str], tuple[Tokenizer, str]]:
    """(target, its source) and (encoder, its source) as ``spec`` resolves them (module docstring of
    ``data.tokenizer``): given directories are read, otherwise the tokenizers are trained."""
    if spec.tokenizer:
        target = (Tokenizer.load(spec.tokenizer), spec.tokenizer)
    else:
        target = (train_tokenizer(spec.languages, spec.vocab_size, spec.seed), "trained")
    if spec.encoder_tokenizer:
        return target, (Tokenizer.load(spec.encoder_tokenizer), spec.encoder_tokenizer)
    if spec.tokenizer:
        return target, (target[0], "data.tokenizer")  # one vocabulary for encoder and decoders
    return target, (train_english_tokenizer(spec.languages, spec.vocab_size, spec.seed), "trained-english")


def _summary(tokenizer: Tokenizer, source: str, directory: Path, requested: int) -> dict[str, Any]:
    return {
        "source": source,
        "vocab_size": tokenizer.vocab_size,
        "requested_vocab_size": requested,
        "pad_id": tokenizer.pad_id,
        "bos_id": tokenizer.bos_id,
        "eos_id": tokenizer.eos_id,
        "unk_id": tokenizer.unk_id,
        "sha1": hashlib.sha1((directory / "tokenizer.json").read_bytes()).hexdigest(),
    }


def _build(spec: DataSpec, directory: Path) -> None:
    (target, target_source), (encoder, encoder_source) = build_tokenizers(spec)
    # Copied in even when read from a directory, so the prepared directory is self-contained.
    target.save(directory)
    encoder.save(directory / ENCODER_DIR)
    manifest = {
        "format": DATA_FORMAT_VERSION,
        "hash": spec_hash(spec),
        "data": to_plain(spec),
        "tokenizer": _summary(target, target_source, directory, spec.vocab_size),
        "encoder_tokenizer": _summary(encoder, encoder_source, directory / ENCODER_DIR, spec.vocab_size),
    }
    write_atomic(directory / "data.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def prepare(spec: DataSpec, root: str | Path) -> PreparedData:
    """Create (once) or reuse ``root/<spec_hash(spec)>/`` and return its ``PreparedData``."""
    spec.validate("data")
    directory = Path(root) / spec_hash(spec)
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "data.json").is_file():
        with open(directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not (directory / "data.json").is_file():  # another process may have built it meanwhile
                _build(spec, directory)
    return PreparedData(spec, directory, Tokenizer.load(directory), Tokenizer.load(directory / ENCODER_DIR))
