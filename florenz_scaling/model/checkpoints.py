"""What a size takes from its checkpoints, decided before any weight is read: the coverage check.

For each size the Florenz model knows which of its tensors must come from which checkpoint (Florence-2: vision
tower, projector, encoder, and the BART decoder in BART sizes; Gemma-2: the whole language model of a Gemma
size) and which start at init (cross-attention, gates, new norms). ``plan_checkpoints`` compares a
checkpoint's ``config.json`` with the size registry and its key list and shapes with the model's (built on
the meta device: no memory), and raises ``CheckpointError`` naming the layout, the field or the key prefixes
with counts, and the fix, when anything required is missing, unexpected or of the wrong shape. The loader
(``model.pretrained``) follows the same plan, so what ``pretrained check`` prints is what a run loads.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from florenz_scaling.model.layouts import (
    FLORENCE2_ORIGINAL,
    GEMMA2,
    SHARED,
    CheckpointError,
    Layout,
    detect_florence_layout,
    read_config,
    tensor_shapes,
)
from florenz_scaling.spec.sizes import BartConfigLite, GemmaConfigLite, SizeConfig

FLORENCE_PARTS = ("vision_tower.", "multi_modal_projector.", "encoder.")
BART_DECODER = "decoder.decoder."
GEMMA_PART = "decoder.lm."
# Computed from the config (a cosine table, or the tied LM head), so a checkpoint may leave them out.
OPTIONAL = {"multi_modal_projector.visual_temporal_embed.pos_idx_to_embed", "decoder.lm.lm_head.weight"}
VOCAB_TABLES = ("encoder.embed_tokens.weight", "decoder.decoder.embed_tokens.weight")
DECODER_VOCAB = "decoder.decoder.embed_tokens.weight"


@dataclass
class CheckpointPlan:
    """How one checkpoint fills one size: Florenz key -> checkpoint key for every tensor that loads, the
    checkpoint keys left out and why, the vocabulary tables copied by row or switched."""

    kind: str  # "florence" or "gemma"
    directory: str
    layout: Layout
    load: dict[str, str] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)
    resized: list[str] = field(default_factory=list)  # rows copied by id, extra model rows at init
    switched: list[str] = field(default_factory=list)  # decoder rows built as the mean of their pieces
    source_rows: dict[str, int] = field(default_factory=dict)  # vocabulary table -> checkpoint rows


def prefixes(keys: list[str], depth: int = 3) -> str:
    """Keys summarised by their leading parts with counts, e.g. ``vision_tower.blocks.*.* (48)``."""
    counts = Counter(".".join(re.sub(r"^\d+$", "*", p) for p in k.split(".")[:depth]) for k in keys)
    return ", ".join(f"{p} ({n})" for p, n in sorted(counts.items()))


def required_keys(size: SizeConfig, kind: str, own: dict[str, Any]) -> list[str]:
    """The model's tensors checkpoint ``kind`` must provide for ``size``."""
    parts = FLORENCE_PARTS + ((BART_DECODER,) if isinstance(size.decoder, BartConfigLite) else ())
    if kind == "gemma":
        parts = (GEMMA_PART,)
    return [k for k in own if k.startswith(parts) and k not in OPTIONAL]


# --- config.json against the size registry --------------------------------------------------------------


def _florence_fields(config: dict, layout: Layout, size: SizeConfig) -> list[tuple[str, Any, Any]]:
    vision, text = config.get("vision_config") or {}, config.get("text_config") or {}
    width = "dim_embed" if layout is FLORENCE2_ORIGINAL else "embed_dim"
    v, enc = size.vision, size.encoder
    projection = vision.get("projection_dim", config.get("projection_dim"))
    fields = [
        (f"vision_config.{width}", vision.get(width), list(v.embed_dim)),
        ("vision_config.depths", vision.get("depths"), list(v.depths)),
        ("vision_config.num_heads", vision.get("num_heads"), list(v.num_heads)),
        ("vision_config.window_size", vision.get("window_size"), v.window_size),
        ("vision_config.projection_dim", projection, v.projection_dim),
        ("text_config.d_model", text.get("d_model"), enc.d_model),
        ("text_config.encoder_layers", text.get("encoder_layers"), enc.layers),
        ("text_config.encoder_attention_heads", text.get("encoder_attention_heads"), enc.heads),
        ("text_config.encoder_ffn_dim", text.get("encoder_ffn_dim"), enc.ffn),
    ]
    if isinstance(size.decoder, BartConfigLite):
        dec = size.decoder
        fields += [
            ("text_config.decoder_layers", text.get("decoder_layers"), dec.layers),
            ("text_config.decoder_attention_heads", text.get("decoder_attention_heads"), dec.heads),
            ("text_config.decoder_ffn_dim", text.get("decoder_ffn_dim"), dec.ffn),
        ]
    return fields


def _gemma_fields(config: dict, g: GemmaConfigLite) -> list[tuple[str, Any, Any]]:
    return [
        ("num_hidden_layers", config.get("num_hidden_layers"), g.layers),
        ("hidden_size", config.get("hidden_size"), g.hidden),
        ("intermediate_size", config.get("intermediate_size"), g.ffn),
        ("num_attention_heads", config.get("num_attention_heads"), g.heads),
        ("num_key_value_heads", config.get("num_key_value_heads"), g.kv_heads),
        ("head_dim", config.get("head_dim"), g.head_dim),
        ("attn_logit_softcapping", config.get("attn_logit_softcapping"), g.attn_softcap),
        ("final_logit_softcapping", config.get("final_logit_softcapping"), g.final_softcap),
        ("vocab_size", config.get("vocab_size"), g.vocab),
    ]


def check_config(config: dict, layout: Layout, size: SizeConfig) -> None:
    """Refuse a checkpoint whose architecture is not the size's, naming the field and both values."""
    if layout is GEMMA2:
        assert isinstance(size.decoder, GemmaConfigLite)
        fields = _gemma_fields(config, size.decoder)
    else:
        fields = _florence_fields(config, layout, size)
        vocab = (config.get("text_config") or {}).get("vocab_size", config.get("vocab_size"))
        if vocab is not None and vocab > size.encoder.vocab:
            fields.append(("text_config.vocab_size", vocab, f"at most {size.encoder.vocab}"))
    for name, theirs, ours in fields:
        if theirs is not None and not isinstance(ours, str) and _norm(theirs) != _norm(ours):
            raise CheckpointError(
                f"config.json field {name} is {theirs} in the {layout.name} checkpoint, but size "
                f"{size.name} has {ours}",
                f"give the checkpoint of size {size.name}'s architecture, or choose the size that matches",
                field=name,
            )
        if isinstance(ours, str):  # a bound the checkpoint exceeds
            raise CheckpointError(
                f"config.json field {name} is {theirs} in the {layout.name} checkpoint, but size "
                f"{size.name} has {ours}",
                "the encoder's embedding table cannot hold the checkpoint's vocabulary: choose a larger size",
                field=name,
            )


def _norm(value: Any) -> Any:
    return [_norm(v) for v in value] if isinstance(value, (list, tuple)) else value


# --- keys and shapes ------------------------------------------------------------------------------------


def plan_checkpoint(
    size: SizeConfig,
    kind: str,
    directory: str | Path,
    own: dict[str, tuple[int, ...]],
    switch_vocabulary: bool = False,
    shapes: dict[str, tuple[int, ...]] | None = None,
) -> CheckpointPlan:
    """The plan for checkpoint ``kind`` of ``size`` (``own``: the model's key -> shape), or a
    ``CheckpointError``. ``switch_vocabulary``: the decoder's vocabulary is not the checkpoint's, so its
    rows are built from pieces (BART sizes)."""
    try:
        shapes = tensor_shapes(directory) if shapes is None else shapes
    except FileNotFoundError as e:
        if not Path(directory).is_dir():
            raise  # no directory at all: the caller names the field (launch) or the path (a run)
        raise CheckpointError(str(e), "point it at a local checkpoint saved with save_pretrained") from None
    config = read_config(directory)
    layout = GEMMA2 if kind == "gemma" else detect_florence_layout(config, list(shapes))
    check_config(config, layout, size)
    plan = CheckpointPlan(kind, str(directory), layout)
    gemma_size = isinstance(size.decoder, GemmaConfigLite)
    unexpected, mismatched = [], []
    for key, shape in shapes.items():
        why = layout.why_ignored(key)
        target = layout.rename(key)
        if why is None and gemma_size and target.startswith(BART_DECODER):
            why = "Gemma sizes take Florence-2's vision tower, projector and encoder, not its BART decoder"
        if why is not None:
            plan.ignored[key] = why
            continue
        targets = [t for t in VOCAB_TABLES if t in own] if target == SHARED else [target]
        if not targets or any(t not in own for t in targets):
            unexpected.append(key)
            continue
        for t in targets:
            want = own[t]
            have = shape[::-1] if t in layout.transposed else shape
            if t in VOCAB_TABLES and len(have) == 2 and have[1] == want[1]:
                plan.source_rows[t] = have[0]
                if t == DECODER_VOCAB and switch_vocabulary:
                    plan.switched += [t] if t not in plan.switched else []
                elif have[0] < want[0]:
                    plan.resized += [t] if t not in plan.resized else []
                elif have[0] > want[0]:
                    mismatched.append(f"{key} {tuple(shape)} -> {t} {tuple(want)}")
                    continue
            elif tuple(have) != tuple(want):
                mismatched.append(f"{key} {tuple(shape)} -> {t} {tuple(want)}")
                continue
            if target == SHARED:
                plan.load.setdefault(t, key)  # an explicit table, where saved too, wins over the tied copy
            else:
                plan.load[t] = key
    gemma_head = "decoder.lm.lm_head.weight"
    if (
        kind == "gemma"
        and gemma_head not in plan.load
        and "decoder.lm.model.embed_tokens.weight" in plan.load
    ):
        plan.load[gemma_head] = plan.load["decoder.lm.model.embed_tokens.weight"]  # tied: saved once
    missing = [k for k in required_keys(size, kind, own) if k not in plan.load]
    problems = []
    if missing:
        problems.append(f"{len(missing)} required tensors missing: {prefixes(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {prefixes(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shapes that do not fit: {'; '.join(mismatched[:4])}")
    if problems:
        raise CheckpointError(
            f"{kind} checkpoint {directory} (layout {layout.name}: {layout.source}) cannot start size "
            f"{size.name}: " + "; ".join(problems),
            f"give a complete {layout.name} checkpoint of size {size.name}'s architecture "
            "(`florenz-scaling pretrained check SWEEP.yaml` lists what each size needs)",
            field=(missing or unexpected or mismatched)[0],
        )
    return plan


@dataclass
class SizePlan:
    """Every checkpoint of one size and what starts at init."""

    size: str
    checkpoints: list[CheckpointPlan]
    at_init: list[str]  # model tensors no checkpoint fills (new modules)
    total: int


def own_shapes(size: SizeConfig) -> dict[str, tuple[int, ...]]:
    """The model's tensor names and shapes, from a build on the meta device (no memory, no init)."""
    from florenz_scaling.model.florenz import build_model

    return {k: tuple(v.shape) for k, v in build_model(size, device="meta").state_dict().items()}


def plan_checkpoints(
    size: SizeConfig,
    florence: str | Path | None,
    gemma: str | Path | None,
    switch_vocabulary: bool = False,
    own: dict[str, tuple[int, ...]] | None = None,
) -> SizePlan:
    """The coverage check of one size's checkpoints (``CheckpointError`` when one cannot start it)."""
    own = own_shapes(size) if own is None else own
    plans = []
    for kind, directory in (("florence", florence), ("gemma", gemma)):
        if directory is None:
            continue
        try:
            if kind == "gemma" and not isinstance(size.decoder, GemmaConfigLite):
                raise CheckpointError(
                    f"size {size.name} has a BART decoder; a Gemma-2 checkpoint does not apply",
                    "remove the gemma checkpoint or choose a Gemma size",
                )
            plans.append(plan_checkpoint(size, kind, directory, own, switch_vocabulary))
        except CheckpointError as e:
            e.kind = kind
            raise
    filled = {k for p in plans for k in p.load}
    return SizePlan(size.name, plans, [k for k in own if k not in filled], len(own))


def describe(plan: SizePlan) -> str:
    """What ``pretrained check`` prints for one size."""
    lines = [f"{plan.size}: {plan.total} tensors"]
    for p in plan.checkpoints:
        lines.append(f"  {p.kind}: {p.directory} (layout {p.layout.name})")
        lines.append(f"    loads {len(p.load)} tensors: {prefixes(list(p.load), 2)}")
        by_reason: dict[str, list[str]] = {}
        for key, why in p.ignored.items():
            by_reason.setdefault(why, []).append(key)
        for why, keys in by_reason.items():
            lines.append(f"    ignores {prefixes(keys, 4)}: {why}")
        for t in p.resized:
            lines.append(f"    {t}: rows 0..{p.source_rows[t] - 1} copied by id, the rest start at init")
        for t in p.switched:
            lines.append(
                f"    {t}: vocabulary switch, each row the mean of the checkpoint's {p.source_rows[t]}-row "
                "embeddings of its pieces under the encoder tokenizer (tied with the LM head)"
            )
    if plan.at_init:
        lines.append(f"  starts at init: {len(plan.at_init)} tensors: {prefixes(plan.at_init, 3)}")
    return "\n".join(lines)
