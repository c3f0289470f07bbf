"""Pretraining of the tiny components the sweeps start from: the paper's protocol in miniature.

    tiny Florence-2: stage A (vision tower + projector learn per-cell scene attributes) ─▶ stage B (English
    captioning, tower frozen) ─▶ Florence2ForConditionalGeneration.save_pretrained
    tiny Gemma-2 (Gemma sizes): a decoder-only LM on text of every language ─▶ Gemma2ForCausalLM

Components are cached by a hash of their spec (``recipe``); ``ensure_components(spec, sweep_dir)`` builds the
missing ones and returns the spec with ``pretrained:`` pointing at them. Importing this package does not load
torch (the stages import it when they build).
"""

from florenz_scaling.pretrain.build import (
    ComponentsReport,
    build_component,
    build_components,
    ensure_components,
    read_component,
    summary,
    with_components,
)
from florenz_scaling.pretrain.recipe import (
    CACHE_ENV,
    COMPONENTS_FORMAT_VERSION,
    Component,
    ComponentPlan,
    cache_dir,
    plan_components,
)

__all__ = [
    "CACHE_ENV",
    "COMPONENTS_FORMAT_VERSION",
    "Component",
    "ComponentPlan",
    "ComponentsReport",
    "build_component",
    "build_components",
    "cache_dir",
    "ensure_components",
    "plan_components",
    "read_component",
    "summary",
    "with_components",
]
