"""Samples and the batch contract shared by the synthetic world, the WebDataset reader and held-out sets.

A batch (``collate``) is a dict of torch tensors — the model and trainer code against exactly this:

==================  =================  =======================================================================
key                 dtype, shape       meaning
==================  =================  =======================================================================
pixel_values        float32 B×3×H×W    RGB image scaled to [0, 1], normalised with ImageNet mean/std
input_ids           long B×prompt_len  prompt ids (prompt tokenizer), truncated, right-padded with its pad
attention_mask      long B×prompt_len  1 on prompt tokens, 0 on padding
decoder_input_ids   long B×target_len  ``[bos] + target[:-1]``, right-padded with ``pad_id``
labels              long B×target_len  ``target + [eos]`` truncated; -100 at padding and decoder-prefix slots
task, lang          list[str] of B     the sample's (task, language) pair
==================  =================  =======================================================================

Prompts are tokenised with the encoder's (prompt) tokenizer, targets with the decoders' shared one; with one
tokenizer for both (``prompt_tokenizer=None``) the model has one vocabulary.
The target is ``prefix + body``: the prefix (e.g. "Das Bild zeigt", only with ``data.decoder_prefix``) is
tokenised on its own, fed to the decoder and not scored, exactly as it is seeded at generation time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from florenz_scaling.data.tokenizer import Tokenizer

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IGNORE_INDEX = -100
# Normalised value of every uint8 level per channel (256×3). A table lookup in numpy is single-threaded and
# cheap; torch's elementwise ops fan out to the intra-op pool, which costs tens of ms on a busy CPU.
_LUT = (
    (np.arange(256, dtype=np.float64)[:, None] / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
).astype(np.float32)


@dataclass(frozen=True)
class Sample:
    """One example before tokenisation."""

    task: str  # "caption" or "translate"
    lang: str  # target language
    image: np.ndarray  # uint8 H×W×3
    prompt: str  # encoder text
    prefix: str  # decoder prefix given but not scored ("" when none)
    body: str  # the scored target text
    key: str = ""  # scene content key (synthetic) or WebDataset __key__

    @property
    def target(self) -> str:
        """The whole target sentence, prefix included."""
        return self.prefix + self.body

    @property
    def pair(self) -> tuple[str, str]:
        """(task, language)."""
        return self.task, self.lang


def normalise_images(images: np.ndarray) -> torch.Tensor:
    """uint8 B×H×W×3 -> float32 B×3×H×W normalised with ImageNet statistics."""
    b, h, w, _ = images.shape
    out = np.empty((b, 3, h, w), dtype=np.float32)
    for c in range(3):
        np.take(_LUT[:, c], images[..., c], out=out[:, c])
    return torch.from_numpy(out)


def collate(
    samples: Sequence[Sample],
    tokenizer: Tokenizer,
    prompt_len: int,
    target_len: int,
    prompt_tokenizer: Tokenizer | None = None,
) -> dict[str, Any]:
    """Tokenise and stack samples into the batch contract above: prompts with ``prompt_tokenizer`` (default
    ``tokenizer``), decoder prefixes and targets with ``tokenizer`` (the target tokenizer)."""
    n = len(samples)
    prompt_tok = tokenizer if prompt_tokenizer is None else prompt_tokenizer
    prompts = prompt_tok.encode_many([s.prompt for s in samples])
    ids = tokenizer.encode_many([s.prefix for s in samples] + [s.body for s in samples])
    prefixes, bodies = ids[:n], ids[n:]
    pad = tokenizer.pad_id
    input_ids = np.full((n, prompt_len), prompt_tok.pad_id, dtype=np.int64)
    attention = np.zeros((n, prompt_len), dtype=np.int64)
    dec_in = np.full((n, target_len), pad, dtype=np.int64)
    labels = np.full((n, target_len), IGNORE_INDEX, dtype=np.int64)
    for i in range(n):
        p = prompts[i][:prompt_len]
        input_ids[i, : len(p)] = p
        attention[i, : len(p)] = 1
        y = (prefixes[i] + bodies[i] + [tokenizer.eos_id])[:target_len]
        dec_in[i, 0] = tokenizer.bos_id
        dec_in[i, 1 : len(y)] = y[:-1]
        labels[i, : len(y)] = y
        labels[i, : min(len(prefixes[i]), len(y))] = IGNORE_INDEX
    return {
        "pixel_values": normalise_images(np.stack([s.image for s in samples])),
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(attention),
        "decoder_input_ids": torch.from_numpy(dec_in),
        "labels": torch.from_numpy(labels),
        "task": [s.task for s in samples],
        "lang": [s.lang for s in samples],
    }
