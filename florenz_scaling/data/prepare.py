"""``prepare``: build or reuse the shared data directory of a data spec (tokenizer + manifest).

``root/<spec hash>/`` holds ``tokenizer.json`` (+ ``tokenizer_config.json``) and ``data.json``, the manifest
written last as the "complete" marker. Several processes (array tasks, ranks) may call ``prepare`` at once:
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
from florenz_scaling.data.tokenizer import Tokenizer, train_tokenizer
from florenz_scaling.data.webdataset import WebDatasetStream, webdataset_heldout
from florenz_scaling.files import write_atomic
from florenz_scaling.spec import DataSpec, to_plain

# Bump when generation changes in a way that alters the prepared files or the samples, so caches are rebuilt.
DATA_FORMAT_VERSION = 1
TrainStream = SyntheticStream | WebDatasetStream


def spec_hash(spec: DataSpec) -> str:
    """Stable 12-hex id of a data spec (plus the data format version): the prepared directory's name."""
    ident = json.dumps({"format": DATA_FORMAT_VERSION, "data": to_plain(spec)}, sort_keys=True)
    return hashlib.sha1(ident.encode()).hexdigest()[:12]


@dataclass
class PreparedData:
    """A prepared data directory: the shared tokenizer, training streams and held-out sets."""

    spec: DataSpec
    directory: Path
    tokenizer: Tokenizer
    _heldout: HeldOut | None = field(default=None, repr=False)

    @property
    def manifest(self) -> dict[str, Any]:
        """The ``data.json`` written by ``prepare`` (spec, hash, tokenizer summary)."""
        return json.loads((self.directory / "data.json").read_text())

    def train_stream(self, seed: int | None = None, rank: int = 0, world_size: int = 1) -> TrainStream:
        """A fresh training stream for one rank; ``seed`` defaults to the data spec's seed."""
        return make_train_stream(
            self.spec, self.tokenizer, self.spec.seed if seed is None else seed, rank, world_size
        )

    def heldout(self) -> HeldOut:
        """The held-out sets of every pair in ``spec.groups`` (one object per ``PreparedData``, memoised)."""
        if self._heldout is None:
            self._heldout = make_heldout(self.spec, self.tokenizer)
        return self._heldout

    def collate(self, samples: Sequence[Sample]) -> dict[str, Any]:
        """Collate samples with this data's tokenizer and lengths."""
        return collate(samples, self.tokenizer, self.spec.prompt_len, self.spec.target_len)


def make_train_stream(
    spec: DataSpec, tokenizer: Tokenizer, seed: int, rank: int = 0, world_size: int = 1
) -> TrainStream:
    """The training stream of ``spec.kind`` (synthetic world or WebDataset shards) for one rank."""
    cls = WebDatasetStream if spec.kind == "webdataset" else SyntheticStream
    return cls(spec, tokenizer, seed, rank, world_size)


def make_heldout(spec: DataSpec, tokenizer: Tokenizer) -> HeldOut:
    """The held-out sets of ``spec.kind`` for every pair in ``spec.groups``."""
    make = webdataset_heldout if spec.kind == "webdataset" else synthetic_heldout
    return make(spec, tokenizer)


def _build(spec: DataSpec, directory: Path) -> None:
    if spec.tokenizer:
        tokenizer = Tokenizer.load(spec.tokenizer)  # copied in, so the directory is self-contained
    else:
        tokenizer = train_tokenizer(spec.languages, spec.vocab_size, spec.seed)
    tokenizer.save(directory)
    manifest = {
        "format": DATA_FORMAT_VERSION,
        "hash": spec_hash(spec),
        "data": to_plain(spec),
        "tokenizer": {
            "source": spec.tokenizer or "trained",
            "vocab_size": tokenizer.vocab_size,
            "requested_vocab_size": spec.vocab_size,
            "pad_id": tokenizer.pad_id,
            "bos_id": tokenizer.bos_id,
            "eos_id": tokenizer.eos_id,
            "unk_id": tokenizer.unk_id,
            "sha1": hashlib.sha1((directory / "tokenizer.json").read_bytes()).hexdigest(),
        },
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
    return PreparedData(spec, directory, Tokenizer.load(directory))
