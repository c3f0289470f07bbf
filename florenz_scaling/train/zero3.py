"""ZeRO-3 specifics of building a model: partitioned from the start, tied heads fetched, sizes reported.

Under ZeRO-3 a parameter's ``data`` is an empty placeholder outside the forward pass of the module that owns
it; DeepSpeed gathers it in that module's pre-forward hook. Two consequences for this model family:
construction must happen inside ``deepspeed.zero.Init`` (otherwise every rank first builds the whole model),
and a weight used by a module that does not own it (BART's LM head reuses the decoder embedding) must be
registered as that module's external parameter, or the forward pass would read the empty placeholder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from torch import nn

from florenz_scaling.model.florenz import BartCrossDecoder, FlorenzModel
from florenz_scaling.spec import RunSpec


@contextlib.contextmanager
def partitioned_build(run: RunSpec, ds_config: dict[str, Any]) -> Iterator[None]:
    """Build the model in this context: at ZeRO-3 each module is partitioned over the ranks as soon as it
    is constructed (``deepspeed.zero.Init``); at other stages nothing changes."""
    if run.train.zero_stage != 3:
        yield
        return
    import deepspeed
    from transformers import PreTrainedModel
    from transformers.integrations.deepspeed import initialize_weights_zero3

    # Each Hugging Face submodule re-initialises its weights at the end of its own __init__, when zero.Init
    # has already partitioned its children: gathered, rank 0 runs the same init in the same order (so the
    # weights equal an unpartitioned build's) and the result is scattered back to every rank.
    original = PreTrainedModel.initialize_weights
    PreTrainedModel.initialize_weights = initialize_weights_zero3  # type: ignore[method-assign]
    try:
        with deepspeed.zero.Init(config_dict_or_path=ds_config):
            yield
    finally:
        PreTrainedModel.initialize_weights = original  # type: ignore[method-assign]


def tied_heads_as_external(model: FlorenzModel) -> None:
    """Let ZeRO-3 gather BART's decoder embedding for the LM head that reuses it in the decoder's forward."""
    import deepspeed

    if isinstance(model.decoder, BartCrossDecoder):
        deepspeed.zero.register_external_parameter(model.decoder, model.decoder.decoder.embed_tokens.weight)


@contextlib.contextmanager
def whole_model(engine: Any) -> Iterator[None]:
    """ZeRO-3: every parameter gathered and DeepSpeed's per-module hooks off for the block. Decoding runs one
    small forward per token; fetching each module's parameters for each of them made decoding ~25x slower
    on CPU. Costs the full model's weights on every rank meanwhile (what TRL does to generate under ZeRO-3,
    with the same private hook API: ``parameter_offload``). Other stages: nothing changes."""
    offload = getattr(engine.optimizer, "parameter_offload", None)
    if offload is None:
        yield
        return
    import deepspeed

    params = list(engine.module.parameters())
    with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
        for p in params:
            p.ds_active_sub_modules.clear()
        offload._remove_module_hooks()
        try:
            yield
        finally:
            offload.forward_hooks, offload.backward_hooks = [], []
            offload.setup_zero_stage3_hooks()


def param_summary(model: nn.Module) -> str:
    """Parameters of the model and, when partitioned (ZeRO-3), the elements this rank holds."""
    params = list(model.parameters())
    total = sum(getattr(p, "ds_numel", p.numel()) for p in params)
    if not any(hasattr(p, "ds_tensor") for p in params):
        return f"{total:,} params"
    local = sum(p.ds_tensor.numel() for p in params if hasattr(p, "ds_tensor"))
    return f"{total:,} params ({local:,} held by this rank: ZeRO-3 partition)"


__all__ = ["param_summary", "partitioned_build", "tied_heads_as_external", "whole_model"]
