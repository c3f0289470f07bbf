"""The Florenz family from Hugging Face parts: Florence-2 vision tower + BART encoder, and a BART or Gemma-2
decoder with gated cross-attention; local pretrained checkpoints; the measurement of F."""

from florenz_scaling.model.florenz import (
    FlorenzModel,
    build_model,
    count_module_params,
    dummy_batch,
    per_sample_loss,
    token_loss,
)
from florenz_scaling.model.pretrained import LoadReport, load_pretrained, read_state_dict

__all__ = [
    "FlorenzModel",
    "LoadReport",
    "build_model",
    "count_module_params",
    "dummy_batch",
    "load_pretrained",
    "per_sample_loss",
    "read_state_dict",
    "token_loss",
]
