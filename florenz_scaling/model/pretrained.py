"""Local Florence-2 / Gemma-2 checkpoints (Hugging Face ``save_pretrained`` directories) loaded into a
Florenz model: no hub access, every key accounted for in a ``LoadReport``."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from florenz_scaling.model.florenz import BartCrossDecoder, FlorenzModel, GemmaCrossDecoder


def read_state_dict(directory: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a local HF checkpoint directory (safetensors, maybe sharded, or pytorch_model.bin)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"pretrained directory {directory} does not exist")
    files = sorted(directory.glob("*.safetensors"))
    if files:
        state: dict[str, torch.Tensor] = {}
        for f in files:
            state.update(load_file(str(f)))
        return state
    bins = sorted(directory.glob("pytorch_model*.bin"))
    if bins:
        state = {}
        for f in bins:
            state.update(torch.load(f, map_location="cpu", weights_only=True))
        return state
    raise FileNotFoundError(f"no *.safetensors or pytorch_model*.bin in {directory}")


# Florence2ForConditionalGeneration key prefixes -> FlorenzModel prefixes.
_FLORENCE_MAP = (
    ("model.vision_tower.", "vision_tower."),
    ("model.multi_modal_projector.", "multi_modal_projector."),
    ("model.language_model.encoder.", "encoder."),
    ("model.language_model.decoder.", "decoder.decoder."),
)


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)  # vocabulary rows copied where the shapes differ
    skipped: list[str] = field(default_factory=list)  # checkpoint tensors with no place in this model

    def __str__(self) -> str:
        return f"{len(self.loaded)} tensors loaded, {len(self.resized)} resized, {len(self.skipped)} skipped"


def gathered(*params: nn.Parameter) -> contextlib.AbstractContextManager[object]:
    """Full tensors of ZeRO-3-partitioned parameters for the duration of the block; what rank 0 writes into
    them is re-partitioned to every rank on exit. A no-op for ordinary parameters."""
    if not any(hasattr(p, "ds_id") for p in params):
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(list(params), modifier_rank=0)


def _copy_into(model: nn.Module, mapped: dict[str, torch.Tensor], report: LoadReport) -> None:
    own = model.state_dict(keep_vars=True)
    with torch.no_grad():
        for key, value in mapped.items():
            if key not in own:
                report.skipped.append(key)
                continue
            # One parameter at a time: under ZeRO-3 at most one full tensor is gathered at any moment.
            with gathered(own[key]):
                _copy_tensor(model, key, own[key], value, report)


def _copy_tensor(
    model: nn.Module, key: str, target: torch.Tensor, value: torch.Tensor, report: LoadReport
) -> None:
    if target.shape == value.shape:
        target.copy_(value.to(target.dtype))
        report.loaded.append(key)
    elif target.dim() == 2 and target.shape[1] == value.shape[1] and "embed_tokens" in key:
        # A resized vocabulary: shared rows are copied, new rows keep their init.
        n = min(target.shape[0], value.shape[0])
        target[:n].copy_(value[:n].to(target.dtype))
        report.resized.append(key)
    else:
        raise ValueError(
            f"pretrained tensor {key} has shape {tuple(value.shape)}, the model expects "
            f"{tuple(target.shape)}: the checkpoint does not match size {model.size.name}"
        )


def load_pretrained(
    model: FlorenzModel, florence_dir: str | Path | None = None, gemma_dir: str | Path | None = None
) -> LoadReport:
    """Load a Florence-2 checkpoint (vision tower, projector, encoder, and the BART decoder in Florence sizes)
    and/or a Gemma-2 checkpoint (Gemma sizes) into ``model``; new modules (cross-attention) keep init."""
    report = LoadReport()
    if florence_dir is not None:
        state = read_state_dict(florence_dir)
        mapped: dict[str, torch.Tensor] = {}
        for key, value in state.items():
            for src, dst in _FLORENCE_MAP:
                if key.startswith(src):
                    if dst.startswith("decoder.") and not isinstance(model.decoder, BartCrossDecoder):
                        report.skipped.append(key)  # Gemma sizes take only vision tower and encoder
                        break
                    mapped[dst + key[len(src) :]] = value
                    break
            else:
                if key == "model.language_model.shared.weight":  # tied embeddings are saved once
                    mapped.setdefault("encoder.embed_tokens.weight", value)
                    if isinstance(model.decoder, BartCrossDecoder):
                        mapped.setdefault("decoder.decoder.embed_tokens.weight", value)
                else:
                    report.skipped.append(key)
        _copy_into(model, mapped, report)
    if gemma_dir is not None:
        if not isinstance(model.decoder, GemmaCrossDecoder):
            raise ValueError(
                f"size {model.size.name} has a BART decoder; a Gemma-2 checkpoint does not apply"
            )
        state = read_state_dict(gemma_dir)
        state.setdefault("lm_head.weight", state["model.embed_tokens.weight"])
        _copy_into(model, {f"decoder.lm.{k}": v for k, v in state.items()}, report)
        # The paper copies each new RMSNorm from its layer's post_attention_layernorm.
        for layer, xa in zip(model.decoder.lm.model.layers, model.decoder.xattn, strict=True):
            with gathered(xa.norm.weight, layer.post_attention_layernorm.weight), torch.no_grad():
                xa.norm.weight.copy_(layer.post_attention_layernorm.weight)
    model.apply_freezing()
    return report
