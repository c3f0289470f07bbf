"""Real data laid out like the paper's: WebDataset tar shards of images with multilingual annotations.

Layout
------
``data.path`` is a directory (every ``*.tar`` in it, sorted), a brace pattern (``/d/shard-{0000..0099}.tar``)
or one ``.tar``. Each sample is a group of tar members sharing a key (WebDataset convention):

- ``<key>.jpg`` | ``.jpeg`` | ``.png`` | ``.webp`` — the image (any size/mode; converted to RGB and resized to
  ``image_size``²).
- ``<key>.json`` — its annotations, modelled on the paper's (CC12M images + a detailed caption per language
  + CCMatrix en→X bitexts attached to the image)::

      {
        "caption": {"en": "A dog runs on a beach.", "de": "Ein Hund rennt am Strand."},
        "translation": [{"lang": "es", "src": "The cat sleeps.", "tgt": "El gato duerme."},
                        {"lang": "zh", "src": "It is raining.", "tgt": "下雨了。"}]
      }

  Both keys are optional; languages are ISO codes as in ``spec.LANGUAGES``; ``src`` is always English.

Sampling
--------
As in the paper's loader, each image contributes at most one example, whose pair is chosen among the
training pairs its annotations offer by a counter: the least-drawn pair so far wins (ties broken by a seeded
hash), and an image offering only pairs more than ``BALANCE_SLACK`` draws ahead of the least-drawn pair is
skipped. Pair counts therefore stay within a few draws of uniform whatever the annotation mix (over-supplied
pairs are under-used, as in the paper); a pair that no training sample offers is an error. Shards are
resampled: epoch ``e``
visits the training shards in a seeded permutation; rank ``r`` of ``w`` takes the epoch's samples ``k`` with
``(k + e) mod w = r``. The stream state (epoch, offset, counts) restores the exact continuation.

The last shard (sorted) is held out for evaluation, like CC12M shard 2175 in the paper; each group pair's
set is its first ``heldout_per_pair`` samples that carry that annotation.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from webdataset.shardlists import expand_urls
from webdataset.tariterators import tarfile_samples

from florenz_scaling.data.collate import Sample
from florenz_scaling.data.heldout import HeldOut
from florenz_scaling.data.language import DECODER_PREFIXES, caption_prompt, translation_prompt
from florenz_scaling.data.stream import BatchStream, check_state
from florenz_scaling.data.tokenizer import Tokenizer
from florenz_scaling.spec import DataSpec, Pair

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
_SHARD_ORDER_STREAM = 5
# How far (in draws) a pair may run ahead of the least-drawn one before images offering only it are skipped.
BALANCE_SLACK = 2


def shard_paths(path: str) -> list[Path]:
    """The shards ``data.path`` names, sorted."""
    p = Path(path)
    shards = sorted(p.glob("*.tar")) if p.is_dir() else sorted(Path(u) for u in expand_urls(path))
    missing = [s for s in shards if not s.is_file()]
    if not shards or missing:
        raise FileNotFoundError(
            f"data.path {path!r}: no tar shards found"
            if not shards
            else f"data.path {path!r}: missing shards {[str(m) for m in missing[:3]]}"
        )
    return shards


def split_shards(path: str) -> tuple[list[Path], Path]:
    """(training shards, held-out shard): the last shard is held out."""
    shards = shard_paths(path)
    if len(shards) < 2:
        raise ValueError(
            f"data.path {path!r} has one shard; need at least two (the last one is held out "
            "for evaluation so that held-out images are never trained on)"
        )
    return shards[:-1], shards[-1]


def read_shard(path: Path) -> Iterator[dict[str, Any]]:
    """Raw samples of one shard: ``{"__key__", "json": bytes, "<image ext>": bytes, ...}``, in tar order."""
    yield from tarfile_samples([{"url": str(path)}])


def annotation(raw: dict[str, Any]) -> dict[str, Any]:
    """The parsed JSON annotation of a raw sample (empty when it has none)."""
    data = raw.get("json")
    return json.loads(data) if data else {}


def offered_pairs(ann: dict[str, Any]) -> set[Pair]:
    """Every (task, language) a sample's annotation can provide."""
    pairs = {("caption", lang) for lang, text in ann.get("caption", {}).items() if text}
    pairs |= {("translate", t["lang"]) for t in ann.get("translation", []) if t.get("src") and t.get("tgt")}
    return pairs


def decode_image(raw: dict[str, Any], size: int) -> np.ndarray:
    """The sample's image as uint8 size×size×3 (RGB, bicubic resize without cropping, as Florence-2 does)."""
    for ext in IMAGE_EXTENSIONS:
        if ext in raw:
            with Image.open(io.BytesIO(raw[ext])) as im:
                return np.asarray(im.convert("RGB").resize((size, size), Image.BICUBIC), dtype=np.uint8)
    raise ValueError(f"sample {raw.get('__key__')!r} has no image (looked for {', '.join(IMAGE_EXTENSIONS)})")


def _prefixed(lang: str, text: str) -> tuple[str, str]:
    """Split a caption into (decoder prefix, body): "Das Bild zeigt" + " ein Hund ..."."""
    prefix = DECODER_PREFIXES[lang]
    if lang == "zh":
        return prefix, text
    # Lower-case the caption's first letter unless it starts an acronym ("A dog" -> "a dog", "USB" stays).
    if text[:1].isupper() and not text[1:2].isupper():
        text = text[:1].lower() + text[1:]
    return prefix, " " + text


def wds_sample(
    raw: dict[str, Any],
    ann: dict[str, Any],
    pair: Pair,
    image_size: int,
    decoder_prefix: bool,
    choice: int = 0,
) -> Sample:
    """Build the example of ``pair`` from a raw sample; ``choice`` picks among a language's bitexts."""
    task, lang = pair
    image = decode_image(raw, image_size)
    if task == "caption":
        text = ann["caption"][lang]
        prefix, body = _prefixed(lang, text) if decoder_prefix else ("", text)
        return Sample(task, lang, image, caption_prompt(lang), prefix, body, raw["__key__"])
    options = [
        t for t in ann.get("translation", []) if t.get("lang") == lang and t.get("src") and t.get("tgt")
    ]
    t = options[choice % len(options)]
    return Sample(task, lang, image, translation_prompt(lang, t["src"]), "", t["tgt"], raw["__key__"])


def _hash(*parts: object) -> int:
    return zlib.crc32(":".join(map(str, parts)).encode())


class WebDatasetStream(BatchStream):
    """Balanced, resampled, rank-aware stream over training shards with the ``SyntheticStream`` API."""

    kind = "webdataset"

    def __init__(
        self,
        spec: DataSpec,
        tokenizer: Tokenizer,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        prompt_tokenizer: Tokenizer | None = None,
    ) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        if not spec.path:
            raise ValueError("data.path is not set: it must name the WebDataset shards")
        self.spec, self.tokenizer = spec, tokenizer
        self.prompt_tokenizer = tokenizer if prompt_tokenizer is None else prompt_tokenizer
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.pairs: tuple[Pair, ...] = spec.pairs()
        self.shards, _ = split_shards(spec.path)
        self.epoch, self.offset = 0, 0  # next raw sample to consider: index `offset` of epoch `epoch`
        self.counts = [0] * len(self.pairs)
        self._gen: Iterator[tuple[int, dict[str, Any]]] | None = None
        self._offered: set[Pair] | None = None

    def _epoch_samples(self, epoch: int, start: int) -> Iterator[tuple[int, dict[str, Any]]]:
        order = np.random.default_rng([self.seed, _SHARD_ORDER_STREAM, epoch]).permutation(len(self.shards))
        k = 0
        for s in order:
            for raw in read_shard(self.shards[int(s)]):
                # Rotating the deal by the epoch gives each rank different images in each epoch.
                if k >= start and (k + epoch) % self.world_size == self.rank:
                    yield k, raw
                k += 1

    def _next(self, decode: bool) -> tuple[Pair, Sample | None]:
        """Consume raw samples until one offers a pair the balancing counter accepts; choose that pair."""
        while True:
            if self._gen is None:
                self._gen = self._epoch_samples(self.epoch, self.offset)
                # Only a pass from the epoch's start can tell that a pair never occurs in the data.
                self._offered = set() if self.offset == 0 else None
            item = next(self._gen, None)
            if item is None:  # epoch exhausted: resample the shards in a new order
                missing = [p for p in self.pairs if self._offered is not None and p not in self._offered]
                if missing:
                    raise ValueError(
                        f"training pairs {missing} occur in no sample of rank {self.rank}'s "
                        f"share of {self.spec.path!r}; balanced sampling cannot draw them — "
                        "remove them from data.caption_languages / data.translation_languages"
                    )
                self.epoch, self.offset, self._gen = self.epoch + 1, 0, None
                continue
            k, raw = item
            self.offset = k + 1
            ann = annotation(raw)
            offered = offered_pairs(ann)
            if self._offered is not None:
                self._offered |= offered
            candidates = [i for i, p in enumerate(self.pairs) if p in offered]
            if not candidates:
                continue
            least = min(self.counts[i] for i in candidates)
            if least > min(self.counts) + BALANCE_SLACK:
                continue  # everything this image offers is over-drawn: skip it to keep the pairs uniform
            ties = [i for i in candidates if self.counts[i] == least]
            h = _hash(self.seed, self.rank, self.epoch, k)
            chosen = ties[h % len(ties)]
            self.counts[chosen] += 1
            pair = self.pairs[chosen]
            if not decode:
                return pair, None
            return pair, wds_sample(raw, ann, pair, self.spec.image_size, self.spec.decoder_prefix, h)

    def next_samples(self, n: int) -> list[Sample]:
        """The next ``n`` samples; advances the stream."""
        out = []
        for _ in range(n):
            sample = self._next(decode=True)[1]
            assert sample is not None
            out.append(sample)
        return out

    def next_pairs(self, n: int) -> list[Pair]:
        """Advance by ``n`` samples returning only their pairs (images are not decoded)."""
        return [self._next(decode=False)[0] for _ in range(n)]

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable position: epoch, offset within it, and the balancing counter."""
        return {
            "kind": self.kind,
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "epoch": self.epoch,
            "offset": self.offset,
            "counts": list(self.counts),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position saved by ``state_dict``; the following samples replay exactly."""
        check_state(state, self.kind, {"seed": self.seed, "rank": self.rank, "world_size": self.world_size})
        if len(state["counts"]) != len(self.pairs):
            raise ValueError(
                f"stream state counts {len(state['counts'])} pairs, this spec trains {len(self.pairs)}"
            )
        self.epoch, self.offset = int(state["epoch"]), int(state["offset"])
        self.counts = [int(c) for c in state["counts"]]
        self._gen = None  # reopen the epoch at the saved offset on the next draw


def webdataset_heldout(
    spec: DataSpec, tokenizer: Tokenizer, prompt_tokenizer: Tokenizer | None = None
) -> HeldOut:
    """Held-out sets from the held-out shard: per pair, its first ``heldout_per_pair`` samples.

    Every pair of ``spec.groups`` must be present (ValueError otherwise); training pairs outside the groups
    get sets too when the shard has them, and raise KeyError from ``samples`` when it does not.
    """
    if not spec.path:
        raise ValueError("data.path is not set: it must name the WebDataset shards")
    _, shard = split_shards(spec.path)
    grouped = {(p[0], p[1]) for ps in spec.groups.values() for p in ps}
    wanted = grouped | set(spec.pairs())
    sets: dict[Pair, list[Sample]] = {}

    def make(pair: Pair) -> list[Sample]:
        if not sets:  # one pass over the shard fills every pair's set
            sets.update({p: [] for p in wanted})
            for raw in read_shard(shard):
                ann = annotation(raw)
                for p in offered_pairs(ann) & wanted:
                    if len(sets[p]) < spec.heldout_per_pair:
                        sets[p].append(wds_sample(raw, ann, p, spec.image_size, spec.decoder_prefix))
            empty = sorted(p for p, s in sets.items() if not s and p in grouped)
            if empty:
                sets.clear()
                raise ValueError(
                    f"held-out shard {shard} has no samples for {empty}; every pair of "
                    "data.groups must be evaluable (add those annotations or drop the pairs)"
                )
        if not sets.get(pair):
            raise KeyError(f"held-out shard {shard} has no samples for {pair}")
        return sets[pair]

    return HeldOut(spec, tokenizer, make, prompt_tokenizer)
