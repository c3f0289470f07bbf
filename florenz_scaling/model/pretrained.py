"""Local Florence-2 (either published layout) and Gemma-2 checkpoints loaded into a Florenz model, strictly:
the coverage plan (``model.checkpoints``) is made first, and a checkpoint that leaves a required tensor at
init, has a key with no place, or a shape that does not fit is an error before any weight is copied.

The vocabulary switch: a BART decoder whose (target) vocabulary differs from its Florence-2 checkpoint's
starts each row as the mean of the checkpoint's embeddings of that token's pieces under the encoder
tokenizer (the paper's initialisation); rows with no pieces keep their init. The LM head is tied to those
rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from florenz_scaling.model.checkpoints import CheckpointPlan, SizePlan, plan_checkpoints
from florenz_scaling.model.florenz import FlorenzModel, GemmaCrossDecoder
from florenz_scaling.model.layouts import read_state_dict

__all__ = ["LoadReport", "gathered", "load_pretrained", "read_state_dict", "switch_rows"]


@dataclass
class LoadReport:
    """What a load did: tensors loaded, vocabulary tables copied by row, switched rows, what was ignored."""

    layouts: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)  # vocabulary rows copied by id where the shapes differ
    skipped: list[str] = field(default_factory=list)  # checkpoint tensors ignored (documented reasons)
    switched_rows: int = 0  # decoder rows built as the mean of their pieces
    rows_at_init: int = 0  # decoder rows with no pieces, left at init
    at_init: list[str] = field(default_factory=list)  # model tensors no checkpoint fills

    def __str__(self) -> str:
        text = (
            f"{len(self.loaded)} tensors loaded ({', '.join(self.layouts)}), {len(self.resized)} resized, "
            f"{len(self.skipped)} ignored; {len(self.at_init)} start at init"
        )
        if self.switched_rows or self.rows_at_init:
            text += f"; vocabulary switch: {self.switched_rows} rows from pieces, {self.rows_at_init} at init"
        return text


def gathered(*params: nn.Parameter) -> contextlib.AbstractContextManager[object]:
    """Full tensors of ZeRO-3-partitioned parameters for the duration of the block; what rank 0 writes into
    them is re-partitioned to every rank on exit. A no-op for ordinary parameters."""
    if not any(hasattr(p, "ds_id") for p in params):
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(list(params), modifier_rank=0)


def switch_rows(
    target: torch.Tensor, source: torch.Tensor, pieces: Sequence[Sequence[int]]
) -> tuple[int, int]:
    """Row i of ``target`` := mean of ``source`` rows ``pieces[i]`` (rows without pieces are untouched).
    Returns (rows switched, rows left at init)."""
    rows = min(len(pieces), target.shape[0])
    flat = [j for i in range(rows) for j in pieces[i]]
    counts = torch.tensor([len(pieces[i]) for i in range(rows)])
    have = counts > 0
    if flat:
        index = torch.tensor(flat)
        if int(index.max()) >= source.shape[0]:
            raise ValueError(
                f"a piece id ({int(index.max())}) is beyond the checkpoint's {source.shape[0]}-row "
                "embedding: data.encoder_tokenizer is not the Florence-2 checkpoint's tokenizer"
            )
        owner = torch.repeat_interleave(torch.arange(rows), counts)
        sums = torch.zeros(rows, source.shape[1], dtype=torch.float32).index_add_(
            0, owner, source[index].float()
        )
        means = sums[have] / counts[have, None]
        target[:rows][have] = means.to(target.dtype)
    return int(have.sum()), target.shape[0] - int(have.sum())


def _copy(
    model: FlorenzModel,
    plan: CheckpointPlan,
    state: dict[str, torch.Tensor],
    pieces: Sequence[Sequence[int]] | None,
    report: LoadReport,
) -> None:
    own = model.state_dict(keep_vars=True)
    with torch.no_grad():
        for ours, theirs in plan.load.items():
            value = state[theirs]
            if ours in plan.layout.transposed:
                value = value.t()
            target = own[ours]
            # One parameter at a time: under ZeRO-3 at most one full tensor is gathered at any moment.
            with gathered(target):
                if ours in plan.switched and pieces is not None:
                    switched, at_init = switch_rows(target, value, pieces)
                    report.switched_rows += switched
                    report.rows_at_init += at_init
                elif ours in plan.resized:
                    target[: value.shape[0]].copy_(value.to(target.dtype))
                    report.resized.append(ours)
                else:
                    target.copy_(value.to(target.dtype))
            report.loaded.append(ours)
    report.skipped += list(plan.ignored)
    report.layouts.append(plan.layout.name)


def load_pretrained(
    model: FlorenzModel,
    florence_dir: str | Path | None = None,
    gemma_dir: str | Path | None = None,
    decoder_pieces: Sequence[Sequence[int]] | None = None,
) -> LoadReport:
    """Load a Florence-2 checkpoint (vision tower, projector, encoder, and the BART decoder in BART sizes)
    and/or a Gemma-2 checkpoint (Gemma sizes) into ``model``; new modules (cross-attention) keep init.

    ``decoder_pieces`` (target id -> encoder-tokenizer ids, ``data.decoder_pieces``) switches a BART
    decoder's vocabulary from the checkpoint's to the target tokenizer's; None keeps ids as they are.
    Raises ``CheckpointError`` (before copying anything) when a checkpoint cannot start the size."""
    # Under ZeRO-3 a parameter's full shape is its ds_shape (its own is the rank's shard).
    own = {k: tuple(getattr(v, "ds_shape", v.shape)) for k, v in model.state_dict(keep_vars=True).items()}
    size_plan: SizePlan = plan_checkpoints(
        model.size, florence_dir, gemma_dir, switch_vocabulary=decoder_pieces is not None, own=own
    )
    report = LoadReport(at_init=size_plan.at_init)
    for plan in size_plan.checkpoints:
        _copy(model, plan, read_state_dict(plan.directory), decoder_pieces, report)
    if gemma_dir is not None and isinstance(model.decoder, GemmaCrossDecoder):
        # The paper copies each new RMSNorm from its layer's post_attention_layernorm.
        for layer, xa in zip(model.decoder.lm.model.layers, model.decoder.xattn, strict=True):
            with gathered(xa.norm.weight, layer.post_attention_layernorm.weight), torch.no_grad():
                xa.norm.weight.copy_(layer.post_attention_layernorm.weight)
    model.apply_freezing()
    return report
