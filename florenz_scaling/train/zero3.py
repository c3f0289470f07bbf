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

import torch
from torch import nn

from florenz_scaling.model.florenz import BartCrossDecoder, FlorenzModel, build_model
from florenz_scaling.spec import RunSpec


def build(run: RunSpec, device: torch.device, ds_config: dict[str, Any]) -> FlorenzModel:
    """The run's model (seeded); at ZeRO-3 built inside ``deepspeed.zero.Init``, each module partitioned over
    the ranks as soon as it is constructed, its tied LM head registered; at other stages a plain build."""
    if run.train.zero_stage != 3:
        return build_model(run.size, device=device, seed=run.seed)
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
            model = build_model(run.size, device=device, seed=run.seed)
    finally:
        PreTrainedModel.initialize_weights = original  # type: ignore[method-assign]
    if isinstance(model.decoder, BartCrossDecoder):  # its LM head reuses the embedding in its own forward
        deepspeed.zero.register_external_parameter(model.decoder, model.decoder.decoder.embed_tokens.weight)
    return model


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


__all__ = ["build", "param_summary", "whole_model"]
