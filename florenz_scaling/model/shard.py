"""How ZeRO-3 splits a model's parameters over ranks, computed on the meta device (no memory, no weights).

DeepSpeed's ZeRO-3 flattens every parameter, pads it to a multiple of the world size and gives each rank one
equal contiguous piece (``ds_tensor``), so a rank holds ``ceil(numel / world)`` elements of each parameter.
Built under ``deepspeed.zero.Init`` (what the trainer does at ZeRO-3), a module's own parameters are
partitioned as soon as its ``__init__`` returns: innermost modules first, so at any moment a rank holds the
pieces of everything built so far plus, briefly, the full parameters of the one module just built. The peak
of that sum is the most parameter memory any rank needs to build the model: ``zero3_footprint`` walks a meta
model in that order and reports it, so an 11B model's build is checked without materialising it.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


def partition_numel(numel: int, world: int) -> int:
    """Elements of one parameter that each rank holds under ZeRO-3 (the parameter padded to ``world``)."""
    if world < 1:
        raise ValueError(f"world size must be >= 1, got {world}")
    return -(-numel // world)


@dataclass(frozen=True)
class Footprint:
    """Per-rank parameter elements of a ZeRO-3 build over ``world`` ranks (multiply by bytes per element)."""

    world: int
    total: int  # elements of the whole model (what one rank would hold without partitioning)
    trainable: int
    shard: int  # elements each rank holds once built (its pieces of every parameter)
    trainable_shard: int
    peak: int  # most elements a rank holds during the build: pieces so far + the largest module's full params
    peak_module: str  # the module whose full parameters are held at the peak

    @property
    def peak_fraction(self) -> float:
        """Peak build memory as a fraction of the full model (1/world is the floor)."""
        return self.peak / self.total


def zero3_footprint(model: nn.Module, world: int) -> Footprint:
    """Per-rank parameter elements of ``model`` (best built on the meta device) partitioned over ``world``.

    Modules are visited in the order ``zero.Init`` partitions them: each module after its children, so the
    transient full parameters are only a module's own (``recurse=False``) ones.
    """
    done: set[int] = set()
    held = peak = 0
    peak_module = ""

    def visit(name: str, module: nn.Module) -> None:
        nonlocal held, peak, peak_module
        for child_name, child in module.named_children():
            visit(f"{name}.{child_name}" if name else child_name, child)
        own = [p for p in module.parameters(recurse=False) if id(p) not in done]
        full = sum(p.numel() for p in own)
        if held + full > peak:
            peak, peak_module = held + full, name or "<root>"
        for p in own:
            done.add(id(p))
            held += partition_numel(p.numel(), world)

    visit("", model)
    params = {id(p): p for p in model.parameters()}.values()  # tied parameters once
    return Footprint(
        world=world,
        total=sum(p.numel() for p in params),
        trainable=sum(p.numel() for p in params if p.requires_grad),
        shard=held,
        trainable_shard=sum(partition_numel(p.numel(), world) for p in params if p.requires_grad),
        peak=max(peak, held),
        peak_module=peak_module,
    )


__all__ = ["Footprint", "partition_numel", "zero3_footprint"]
