"""The Florenz family from Hugging Face parts: Florence-2 vision tower + BART encoder, and a BART or Gemma-2
decoder with gated cross-attention; local pretrained checkpoints; the measurement of F."""

from florenz_scaling.model.checkpoints import SizePlan, describe, plan_checkpoints
from florenz_scaling.model.florenz import (
    FlorenzModel,
    build_model,
    count_module_params,
    dummy_batch,
    per_sample_loss,
    token_loss,
)
from florenz_scaling.model.layouts import LAYOUTS, CheckpointError, Layout
from florenz_scaling.model.pretrained import LoadReport, load_pretrained, read_state_dict, switch_rows

__all__ = [
    "LAYOUTS",
    "CheckpointError",
    "FlorenzModel",
    "Layout",
    "LoadReport",
    "SizePlan",
    "describe",
    "plan_checkpoints",
    "switch_rows",
    "build_model",
    "count_module_params",
    "dummy_batch",
    "load_pretrained",
    "per_sample_loss",
    "read_state_dict",
    "token_loss",
]
