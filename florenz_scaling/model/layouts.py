"""Published checkpoint layouts as data: how each one names its tensors, and how to read a directory's config,
keys and shapes without loading its weights.

Three layouts, each one table of key renames into the Florenz model's names:

- ``florence2-original``: Microsoft's ``microsoft/Florence-2-base`` / ``-large`` (remote code, ``auto_map``
  in ``config.json``, ``vision_config.dim_embed``, ``pytorch_model.bin``). DaViT blocks wrap their modules in
  ``PreNorm``/``Residual`` (``window_attn.fn.qkv``), the projection is a bare matrix used as ``x @ W`` (so it
  is transposed into a linear weight), and BART sits under ``language_model.model``.
- ``florence2-native``: transformers' own ``Florence2ForConditionalGeneration`` (``florence-community/*``,
  ``vision_config.embed_dim``), the layout the tiny components are saved in.
- ``gemma2``: ``Gemma2ForCausalLM`` (sharded safetensors with ``model.safetensors.index.json``).

Nothing here executes a checkpoint's Python files: ``.bin`` files are read with
``torch.load(weights_only=True)`` and safetensors headers are parsed as JSON.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """One published layout: ordered renames (regex, replacement) applied to every key in turn; keys whose
    renamed form is in ``transposed`` are stored as the transpose of the Florenz tensor; ``ignored`` keys
    (regex -> why) have no place in any Florenz model."""

    name: str
    source: str
    renames: tuple[tuple[str, str], ...]
    transposed: frozenset[str] = frozenset()
    ignored: tuple[tuple[str, str], ...] = ()
    _compiled: tuple[tuple[re.Pattern[str], str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", tuple((re.compile(p), r) for p, r in self.renames))

    def rename(self, key: str) -> str:
        """The Florenz name of checkpoint key ``key`` (unchanged where no rename applies)."""
        for pattern, repl in self._compiled:
            key = pattern.sub(repl, key)
        return key

    def why_ignored(self, key: str) -> str | None:
        """The documented reason ``key`` is not loaded, or None when it should be."""
        return next((why for pattern, why in self.ignored if re.fullmatch(pattern, key)), None)


# The tied embedding every Florence-2 saves once; it fills the encoder's and (BART sizes) decoder's tables.
SHARED = "shared.weight"
_TIED_HEAD = "the LM head is tied to the shared embedding"

FLORENCE2_ORIGINAL = Layout(
    name="florence2-original",
    source="microsoft/Florence-2-* (remote-code layout, pytorch_model.bin)",
    renames=(
        (r"^image_projection$", "multi_modal_projector.image_projection.weight"),
        (r"^image_proj_norm\.", "multi_modal_projector.image_proj_norm."),
        (r"^image_pos_embed\.", "multi_modal_projector.image_position_embed."),
        (r"^visual_temporal_embed\.", "multi_modal_projector.visual_temporal_embed."),
        (r"^language_model\.model\.shared\.weight$", SHARED),
        (r"^language_model\.model\.encoder\.", "encoder."),
        (r"^language_model\.model\.decoder\.", "decoder.decoder."),
        # Inside the DaViT blocks: PreNorm(norm, fn) and DepthWiseConv2d(dw) wrappers are flattened.
        (r"^(vision_tower\.convs\.\d+)\.proj\.", r"\1.conv."),
        (r"\.(conv1|conv2)\.fn\.dw\.", r".\1."),
        (r"\.(window_attn|channel_attn)\.norm\.", ".norm1."),
        (r"\.(window_attn|channel_attn)\.fn\.", r".\1."),
        (r"\.ffn\.norm\.", ".norm2."),
        (r"\.ffn\.fn\.net\.(fc[12])\.", r".ffn.\1."),
    ),
    transposed=frozenset({"multi_modal_projector.image_projection.weight"}),
    ignored=(
        (r"language_model\.final_logits_bias", "BART's output bias: the Florenz decoders have none"),
        (r"language_model\.lm_head\.weight", _TIED_HEAD),
    ),
)

FLORENCE2_NATIVE = Layout(
    name="florence2-native",
    source="Florence2ForConditionalGeneration (florence-community/Florence-2-*; the tiny components)",
    renames=(
        (r"^model\.vision_tower\.", "vision_tower."),
        (r"^model\.multi_modal_projector\.", "multi_modal_projector."),
        (r"^model\.language_model\.shared\.weight$", SHARED),
        (r"^model\.language_model\.encoder\.", "encoder."),
        (r"^model\.language_model\.decoder\.", "decoder.decoder."),
    ),
    ignored=(
        (r"lm_head\.weight", _TIED_HEAD),
        (r"final_logits_bias", "BART's output bias: the Florenz decoders have none"),
    ),
)

GEMMA2 = Layout(
    name="gemma2",
    source="transformers Gemma2ForCausalLM (google/gemma-2-*, sharded safetensors)",
    renames=((r"^model\.", "decoder.lm.model."), (r"^lm_head\.weight$", "decoder.lm.lm_head.weight")),
)

LAYOUTS = {layout.name: layout for layout in (FLORENCE2_ORIGINAL, FLORENCE2_NATIVE, GEMMA2)}


class CheckpointError(ValueError):
    """A checkpoint that cannot start a size: what is wrong (naming the layout, keys or config field) and the
    fix. ``field`` is the config field or key at fault, for messages that name the spec field around it."""

    def __init__(self, problem: str, fix: str, field: str = "") -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem, self.fix, self.field = problem, fix, field
        self.kind = ""  # "florence" or "gemma": the checkpoint at fault, set by the coverage plan


def read_config(directory: str | Path) -> dict:
    """``config.json`` of a checkpoint directory (an error naming the directory when absent)."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise CheckpointError(
            f"{directory} has no config.json",
            "give the whole save_pretrained directory (config.json beside the weights)",
        )
    return json.loads(path.read_text())


def detect_florence_layout(config: dict, keys: list[str]) -> Layout:
    """Which Florence-2 layout ``config``/``keys`` are in: ``auto_map`` or ``vision_config.dim_embed`` (and
    unprefixed ``vision_tower.`` keys) mean Microsoft's original, ``vision_config.embed_dim`` and ``model.``
    keys transformers' native one."""
    vision = config.get("vision_config") or {}
    original_keys = any(k.startswith(("vision_tower.", "language_model.")) for k in keys)
    native_keys = any(k.startswith(("model.vision_tower.", "model.language_model.")) for k in keys)
    if ("auto_map" in config or "dim_embed" in vision) and original_keys and not native_keys:
        return FLORENCE2_ORIGINAL
    if "embed_dim" in vision and native_keys and not original_keys:
        return FLORENCE2_NATIVE
    raise CheckpointError(
        f"cannot tell the Florence-2 layout: config.json has "
        f"{'auto_map' if 'auto_map' in config else 'no auto_map'}, vision_config keys "
        f"{sorted(vision)[:6]}, and the weights' keys start with {sorted({k.split('.')[0] for k in keys})}",
        "give Microsoft's Florence-2 directory (config.json with auto_map, pytorch_model.bin) or one "
        "saved by transformers' Florence2ForConditionalGeneration.save_pretrained",
    )


def weight_files(directory: str | Path) -> list[Path]:
    """The weight files of a checkpoint: safetensors (sharded or not), else ``pytorch_model*.bin``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"pretrained directory {directory} does not exist")
    files = sorted(directory.glob("*.safetensors")) or sorted(directory.glob("pytorch_model*.bin"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors or pytorch_model*.bin in {directory}")
    return files


def _safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}


def tensor_shapes(directory: str | Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's name and shape, from safetensors headers (no weights read) or one read of the .bin."""
    shapes: dict[str, tuple[int, ...]] = {}
    for f in weight_files(directory):
        if f.suffix == ".safetensors":
            shapes.update(_safetensors_shapes(f))
        else:
            import torch

            state = torch.load(f, map_location="cpu", weights_only=True, mmap=True)
            shapes.update({k: tuple(v.shape) for k, v in state.items()})
    return shapes


def read_state_dict(directory: str | Path) -> dict:
    """All tensors of a local checkpoint directory (safetensors, maybe sharded, or pytorch_model*.bin)."""
    import torch
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for f in weight_files(directory):
        if f.suffix == ".safetensors":
            state.update(load_file(str(f)))
        else:
            state.update(torch.load(f, map_location="cpu", weights_only=True))
    return state
