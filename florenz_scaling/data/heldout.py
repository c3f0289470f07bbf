"""Fixed held-out evaluation sets per (task, language), grouped as in the paper (SC, UC, ST by default).

Every pair named in ``spec.groups`` gets a set, whether or not it is trained (e.g. captioning in es/zh is
the unseen-captioning group UC). Synthetic sets are ``heldout_per_pair`` scenes drawn from their own RNG
stream (``default_rng([spec.seed, 2, i])``) by rejection into the held-out split of scene *content*, so no
held-out scene is ever a training scene. Scene ``i`` is the same image in every pair's set (like the paper's
test shard, where en and es captions describe the same images), which makes per-pair losses comparable.
The sets depend only on the data spec, not on the run's seed: every run of a sweep is scored on the same data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from florenz_scaling.data.collate import Sample, collate
from florenz_scaling.data.stream import HELDOUT_STREAM, synthetic_sample
from florenz_scaling.data.tokenizer import Tokenizer
from florenz_scaling.data.world import Scene, sample_scene
from florenz_scaling.spec import DataSpec, Pair


class HeldOut:
    """Held-out samples per pair (built lazily, memoised) and their group membership."""

    def __init__(
        self,
        spec: DataSpec,
        tokenizer: Tokenizer,
        make: Callable[[Pair], list[Sample]],
        prompt_tokenizer: Tokenizer | None = None,
    ) -> None:
        self.spec, self.tokenizer, self._make = spec, tokenizer, make
        # Prompts go to the encoder, in its vocabulary; targets (and generations) in the decoders'.
        self.prompt_tokenizer = tokenizer if prompt_tokenizer is None else prompt_tokenizer
        self.groups: dict[str, tuple[Pair, ...]] = {
            g: tuple((p[0], p[1]) for p in ps) for g, ps in spec.groups.items()
        }
        seen: dict[Pair, None] = {}
        for pairs in self.groups.values():
            for p in pairs:
                seen.setdefault(p, None)
        self.pairs: tuple[Pair, ...] = tuple(seen)  # every pair of every group, in group order, once
        self._cache: dict[Pair, list[Sample]] = {}

    def groups_of(self, pair: Pair) -> tuple[str, ...]:
        """All groups that list ``pair``."""
        return tuple(g for g, ps in self.groups.items() if tuple(pair) in ps)

    def group_of(self, pair: Pair) -> str:
        """The first group that lists ``pair``; KeyError if none does."""
        groups = self.groups_of(pair)
        if not groups:
            raise KeyError(f"{pair} is in no held-out group")
        return groups[0]

    def is_trained(self, pair: Pair) -> bool:
        """Whether ``pair`` is among the training pairs (false for unseen captioning)."""
        return tuple(pair) in self.spec.pairs()

    def samples(self, pair: Pair) -> list[Sample]:
        """The fixed samples of ``pair`` (same list, same order, on every call)."""
        pair = (pair[0], pair[1])
        if pair not in self._cache:
            self._cache[pair] = self._make(pair)
        return self._cache[pair]

    def num_samples(self, pair: Pair) -> int:
        """Size of ``pair``'s set (``heldout_per_pair``, or fewer if a held-out shard runs short)."""
        return len(self.samples(pair))

    def batches(self, pair: Pair, batch_size: int) -> Iterator[dict[str, Any]]:
        """Collated batches of ``pair``'s set, in order; the last one may be smaller."""
        samples = self.samples(pair)
        for i in range(0, len(samples), batch_size):
            chunk = samples[i : i + batch_size]
            yield collate(
                chunk, self.tokenizer, self.spec.prompt_len, self.spec.target_len, self.prompt_tokenizer
            )

    def all_batches(self, batch_size: int) -> dict[Pair, list[dict[str, Any]]]:
        """Every pair's batches, materialised."""
        return {p: list(self.batches(p, batch_size)) for p in self.pairs}


def heldout_scene(seed: int, index: int) -> Scene:
    """Held-out scene ``index`` of a data seed; disjoint in content from every training scene."""
    return sample_scene(np.random.default_rng([seed, HELDOUT_STREAM, index]), "heldout")


def synthetic_heldout(
    spec: DataSpec, tokenizer: Tokenizer, prompt_tokenizer: Tokenizer | None = None
) -> HeldOut:
    """Held-out sets of the synthetic world for every pair of ``spec.groups``."""
    scenes: list[Scene] = []

    def make(pair: Pair) -> list[Sample]:
        while len(scenes) < spec.heldout_per_pair:  # shared by all pairs, drawn once
            scenes.append(heldout_scene(spec.seed, len(scenes)))
        return [
            synthetic_sample(s, pair[0], pair[1], spec.image_size, spec.decoder_prefix)
            for s in scenes[: spec.heldout_per_pair]
        ]

    return HeldOut(spec, tokenizer, make, prompt_tokenizer)
