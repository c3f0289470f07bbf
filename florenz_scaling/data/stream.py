"""The synthetic training stream: infinite, task-language balanced, deterministic, rank-aware, resumable.

Sample ``j`` of rank ``r`` out of ``w`` is global sample ``g = j·w + r``; everything about it is a pure
function of (seed, g), so ranks draw disjoint shares and a stream position is one integer.

- Pair: the global sequence is cut into blocks of K = len(spec.pairs()) and each block is a seeded random
  permutation of the pairs. Every draw is uniform over the training pairs, and counts never drift apart by
  more than one block — the deterministic counterpart of the paper's counter that down-weights over-sampled
  pairs ("task-lang-balancing").
- Scene: drawn from ``default_rng([seed, 1, g])`` by rejection into the training split (see ``world``).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np

from florenz_scaling.data.collate import Sample, collate
from florenz_scaling.data.language import caption_prompt, describe, translation_prompt
from florenz_scaling.data.tokenizer import Tokenizer
from florenz_scaling.data.world import Scene, render, sample_scene
from florenz_scaling.spec import DataSpec, Pair

TRAIN_STREAM, HELDOUT_STREAM, PAIR_STREAM = 1, 2, 4  # RNG stream ids (3 is the tokenizer corpus)


def synthetic_sample(scene: Scene, task: str, lang: str, image_size: int, decoder_prefix: bool) -> Sample:
    """Turn a scene into a captioning or en→``lang`` translation example.

    Captions use the scene's own style, except with ``decoder_prefix``: then every caption opens with the
    language's prefix ("Das Bild zeigt ...") and the prefix is split off to be given to the decoder unscored.
    Translation targets are always scored whole; the English source uses the same style as the target.
    """
    image = render(scene, image_size)
    if task == "caption":
        prefix, body = describe(scene.objects, lang, scene.framed or decoder_prefix)
        if not decoder_prefix:
            prefix, body = "", prefix + body
        return Sample(task, lang, image, caption_prompt(lang), prefix, body, scene.key)
    if task == "translate":
        source = "".join(describe(scene.objects, "en", scene.framed))
        target = "".join(describe(scene.objects, lang, scene.framed))
        return Sample(task, lang, image, translation_prompt(lang, source), "", target, scene.key)
    raise ValueError(f"unknown task {task!r}")


@lru_cache(maxsize=256)
def _block_permutation(seed: int, block: int, k: int) -> tuple[int, ...]:
    return tuple(int(i) for i in np.random.default_rng([seed, PAIR_STREAM, block]).permutation(k))


class BatchStream:
    """What every training stream shares: batches and iteration on top of its own ``next_samples``."""

    spec: DataSpec
    tokenizer: Tokenizer  # targets and decoder prefixes
    prompt_tokenizer: Tokenizer  # encoder prompts

    def next_samples(self, n: int) -> list[Sample]:
        raise NotImplementedError

    def next_batch(self, batch_size: int) -> dict[str, Any]:
        """The next ``batch_size`` samples collated (see ``collate`` for the contract)."""
        samples = self.next_samples(batch_size)
        return collate(
            samples, self.tokenizer, self.spec.prompt_len, self.spec.target_len, self.prompt_tokenizer
        )

    def __iter__(self) -> Iterator[Sample]:
        while True:
            yield from self.next_samples(1)


class SyntheticStream(BatchStream):
    """Infinite training stream of one rank; ``next_batch`` returns the collated batch contract."""

    kind = "synthetic"

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
        self.spec, self.tokenizer = spec, tokenizer
        self.prompt_tokenizer = tokenizer if prompt_tokenizer is None else prompt_tokenizer
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.pairs: tuple[Pair, ...] = spec.pairs()
        if not self.pairs:
            raise ValueError("data spec has no training pairs (no caption or translation languages)")
        self.position = 0  # local index of the next sample

    def _global(self, index: int) -> int:
        return index * self.world_size + self.rank

    def pair_at(self, index: int) -> Pair:
        """The (task, language) of local sample ``index`` — the same code path ``sample_at`` uses."""
        block, slot = divmod(self._global(index), len(self.pairs))
        return self.pairs[_block_permutation(self.seed, block, len(self.pairs))[slot]]

    def sample_at(self, index: int) -> Sample:
        """Local sample ``index`` of this rank (pure: does not move the stream)."""
        task, lang = self.pair_at(index)
        rng = np.random.default_rng([self.seed, TRAIN_STREAM, self._global(index)])
        scene = sample_scene(rng, "train")
        return synthetic_sample(scene, task, lang, self.spec.image_size, self.spec.decoder_prefix)

    def next_samples(self, n: int) -> list[Sample]:
        """The next ``n`` samples; advances the stream."""
        out = [self.sample_at(i) for i in range(self.position, self.position + n)]
        self.position += n
        return out

    def next_pairs(self, n: int) -> list[Pair]:
        """Advance by ``n`` samples returning only their pairs (no rendering): for coverage statistics."""
        out = [self.pair_at(i) for i in range(self.position, self.position + n)]
        self.position += n
        return out

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable position; ``load_state_dict`` of it replays the following samples exactly."""
        return {
            "kind": self.kind,
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "position": self.position,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position saved by ``state_dict`` of a stream with the same seed, rank and world size."""
        check_state(state, self.kind, {"seed": self.seed, "rank": self.rank, "world_size": self.world_size})
        self.position = int(state["position"])


def check_state(state: dict[str, Any], kind: str, expected: dict[str, Any]) -> None:
    """Refuse a stream state saved by a differently configured stream (it would not replay the same data)."""
    if state.get("kind") != kind:
        raise ValueError(f"stream state is for a {state.get('kind')!r} stream, this one is {kind!r}")
    for key, value in expected.items():
        if state.get(key) != value:
            raise ValueError(
                f"stream state has {key}={state.get(key)!r} but this stream has {key}={value!r};"
                " resume with the same seed, rank and world size (the data order depends on it)"
            )
