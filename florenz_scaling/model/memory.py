"""Per-rank memory of a training run under DeepSpeed ZeRO: parameters, gradients and optimizer state.

The accounting is the ZeRO paper's (Rajbhandari et al. 2020, §3.1): with mixed precision (bf16 or fp16) a
rank keeps 2-byte weights and 2-byte gradients, and Adam keeps K = 12 bytes of optimizer state per trainable
parameter (an fp32 master copy, momentum and variance); in fp32 (training on CPU) weights and gradients take
4 bytes each and Adam 8 (momentum and variance, no master copy). Frozen parameters (the vision tower and,
in Gemma sizes, the Gemma LM: ``FlorenzModel.apply_freezing``) are weights only: no gradient, no optimizer
state. Each stage partitions one more part over the ``world`` ranks: stage 1 the optimizer state, stage 2
the gradients too (both as DeepSpeed does it, one flat buffer of the trainable parameters padded to the
world size), stage 3 the parameters as well, each parameter padded on its own (``shard.partition_numel``).
At stage 3 the build under ``deepspeed.zero.Init`` briefly holds one module's full parameters on top of the
pieces built so far; ``build_peak`` is that peak (``shard.zero3_footprint``) in the training dtype.

Activations are not counted: they depend on the micro-batch, the sequence lengths (image tokens, prompt,
target) and on activation checkpointing, none of which changes what ZeRO partitions, so this is the floor a
rank needs before its first forward pass; leave headroom for activations, DeepSpeed's communication buckets
and the CUDA context.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from torch import nn

from florenz_scaling.model.shard import partition_numel, zero3_footprint

# Training precision -> bytes per element of (weights, gradients, Adam state per trainable parameter).
BYTES: dict[str, tuple[int, int, int]] = {"fp32": (4, 4, 8), "bf16": (2, 2, 12), "fp16": (2, 2, 12)}


@dataclass(frozen=True)
class RankMemory:
    """Bytes one rank holds for a model under one ZeRO stage over ``world`` ranks."""

    size: str
    zero_stage: int
    world: int
    precision: str  # fp32, bf16 or fp16 (what the run trains in)
    params: int  # weights, frozen ones included
    grads: int
    optimizer: int
    build_peak: int | None = None  # ZeRO-3: most parameter bytes during the partitioned build

    @property
    def total(self) -> int:
        """Parameters + gradients + optimizer state once built (activations not counted)."""
        return self.params + self.grads + self.optimizer

    @property
    def peak(self) -> int:
        """The most the rank holds at any time counted here: built, or (ZeRO-3) while building."""
        return max(self.total, self.build_peak or 0)


def model_memory(model: nn.Module, zero_stage: int, world: int, precision: str, size: str = "") -> RankMemory:
    """Per-rank bytes of ``model`` (best built on meta) under ZeRO ``zero_stage`` over ``world`` ranks."""
    if zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"ZeRO stage must be 0, 1, 2 or 3, got {zero_stage}")
    if precision not in BYTES:
        raise ValueError(f"precision must be one of {', '.join(BYTES)}, got {precision!r}")
    params = list({id(p): p for p in model.parameters()}.values())  # tied parameters once
    w, g, k = BYTES[precision]
    trainable = [p.numel() for p in params if p.requires_grad]
    if zero_stage == 3:
        fp = zero3_footprint(model, world)
        own, grad_elems, opt_elems, peak = fp.shard, fp.trainable_shard, fp.trainable_shard, fp.peak * w
    else:
        own, peak = sum(p.numel() for p in params), None
        flat = partition_numel(sum(trainable), world)  # stages 1-2: one flat buffer of trainable params
        opt_elems = flat if zero_stage >= 1 else sum(trainable)
        grad_elems = flat if zero_stage >= 2 else sum(trainable)
    return RankMemory(size, zero_stage, world, precision, own * w, grad_elems * g, opt_elems * k, peak)


@functools.lru_cache(maxsize=16)
def meta_model(size: str) -> nn.Module:
    """Registered size ``size`` built once on the meta device (treat it as read-only: it is shared)."""
    from florenz_scaling.model.florenz import build_model  # transformers: only when a size is built

    return build_model(size, device="meta")


def size_memory(size: str, zero_stage: int, world: int, precision: str) -> RankMemory:
    """Per-rank bytes of registered size ``size``, built once on the meta device (no memory, no weights)."""
    return model_memory(meta_model(size), zero_stage, world, precision, size)


__all__ = ["BYTES", "RankMemory", "meta_model", "model_memory", "size_memory"]
