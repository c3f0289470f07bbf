"""Named model sizes: the paper's four and a ladder of tiny CPU sizes of the same architecture family.

Each size is a frozen config of its components. Total parameters P and trainable parameters P_t (under the
paper's freezing policy) are computed analytically here, without torch; ``tests/test_sizes.py`` checks them
against the real module built on the meta device. Forward MACs per sample F are measured with torch's FLOP
counter (``florenz_scaling.model.flops``) and cached in ``fwd_gmacs.json`` so planning never imports torch.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class VisionConfig:
    """DaViT vision tower (Florence-2) plus the image projection into the encoder width."""

    embed_dim: tuple[int, int, int, int]
    num_heads: tuple[int, int, int, int]
    depths: tuple[int, int, int, int] = (1, 1, 9, 1)
    patch_size: tuple[int, int, int, int] = (7, 3, 3, 3)
    patch_stride: tuple[int, int, int, int] = (4, 2, 2, 2)
    patch_padding: tuple[int, int, int, int] = (3, 1, 1, 1)
    patch_prenorm: tuple[bool, bool, bool, bool] = (False, True, True, True)
    window_size: int = 12
    mlp_ratio: float = 4.0
    projection_dim: int = 768
    max_position_embeddings: int = 50


@dataclass(frozen=True)
class BartConfigLite:
    """A BART stack (encoder or decoder): layers, width, heads, FFN, vocabulary, max positions."""

    layers: int
    d_model: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int


@dataclass(frozen=True)
class GemmaConfigLite:
    """A Gemma-2 decoder; gated cross-attention to the encoder is added in every layer."""

    layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    attn_softcap: float = 50.0
    final_softcap: float = 30.0
    query_pre_attn_scalar: int = 256
    sliding_window: int = 4096
    max_positions: int = 8192


@dataclass(frozen=True)
class SizeConfig:
    """One model size. ``image_size``, ``prompt_len`` and ``target_len`` are the dummy sample for F."""

    name: str
    family: Literal["florence", "gemma"]
    vision: VisionConfig
    encoder: BartConfigLite
    decoder: BartConfigLite | GemmaConfigLite
    image_size: int = 224
    prompt_len: int = 128
    target_len: int = 128
    tiny: bool = False

    @property
    def image_tokens(self) -> int:
        """Image tokens entering the encoder: spatial mean token + one per 32×32 patch."""
        side = self.image_size // 32
        return 1 + side * side

    @property
    def params(self) -> int:
        return count_params(self)["total"]

    @property
    def trainable_params(self) -> int:
        return count_params(self)["trainable"]

    @property
    def fwd_gmacs(self) -> float:
        """Forward MACs of one dummy sample, in GMACs (measured; see ``florenz_scaling.model.flops``)."""
        return fwd_gmacs(self.name)


# --- analytic parameter counts --------------------------------------------------------------------------


def _linear(i: int, o: int, bias: bool = True) -> int:
    return i * o + (o if bias else 0)


def _ln(d: int) -> int:
    return 2 * d


def vision_params(v: VisionConfig) -> int:
    total = 0
    for s in range(4):
        d = v.embed_dim[s]
        cin = 3 if s == 0 else v.embed_dim[s - 1]
        k = v.patch_size[s]
        total += cin * d * k * k + d + _ln(cin if v.patch_prenorm[s] else d)  # conv embed + its norm
        hidden = int(d * v.mlp_ratio)
        dwconv = d * 9 + d
        ffn = _linear(d, hidden) + _linear(hidden, d)
        attn = _linear(d, 3 * d) + _linear(d, d)
        # spatial block: dwconv, norm, window attention, dwconv, norm, FFN; channel block the same
        block = 2 * (2 * dwconv + 2 * _ln(d) + attn + ffn)
        total += v.depths[s] * block
    return total


def projector_params(v: VisionConfig) -> int:
    last = v.embed_dim[-1]
    pos = v.max_position_embeddings * (last // 2) + v.max_position_embeddings * (last - last // 2)
    return last * v.projection_dim + _ln(v.projection_dim) + pos


def bart_params(b: BartConfigLite, decoder: bool) -> dict[str, int]:
    d = b.d_model
    attn = 4 * _linear(d, d)
    layer = attn + _ln(d) + _linear(d, b.ffn) + _linear(b.ffn, d) + _ln(d)
    if decoder:
        layer += attn + _ln(d)  # cross-attention and its norm
    return {
        "embed": b.vocab * d,  # decoder: tied with the LM head
        "positions": (b.max_positions + 2) * d,  # BART's learned positions carry an offset of 2
        "layers": b.layers * layer + _ln(d),  # + layernorm_embedding
    }


def gemma_params(g: GemmaConfigLite, enc_dim: int) -> dict[str, int]:
    h, q, kv = g.hidden, g.heads * g.head_dim, g.kv_heads * g.head_dim
    self_attn = h * q + 2 * h * kv + q * h
    layer = self_attn + 3 * h * g.ffn + 4 * h
    xattn = h * q + 2 * enc_dim * kv + q * h + h + 1  # q, k, v, o, new RMSNorm, gate
    return {"embed": g.vocab * h, "layers": g.layers * layer + h, "xattn": g.layers * xattn}


@functools.lru_cache(maxsize=256)  # sizes are frozen; a 10,000-run plan asks for each size's counts often
def count_params(size: SizeConfig) -> dict[str, int]:
    """Parameters per component, the total P and the trainable P_t under the paper's freezing policy.

    Frozen: vision tower and projection always; in Gemma sizes also Gemma's own layers. Trained: the encoder
    (with its embeddings), the whole BART decoder, or Gemma's cross-attention, gates, new norms and the
    embeddings with their tied LM head.
    """
    vision = vision_params(size.vision)
    proj = projector_params(size.vision)
    enc = sum(bart_params(size.encoder, decoder=False).values())
    out = {"vision": vision, "projector": proj, "encoder": enc}
    if isinstance(size.decoder, BartConfigLite):
        dec = sum(bart_params(size.decoder, decoder=True).values())
        out["decoder"] = dec
        trainable = enc + dec
    else:
        g = gemma_params(size.decoder, size.encoder.d_model)
        out["decoder"] = g["embed"] + g["layers"]
        out["xattn"] = g["xattn"]
        trainable = enc + g["embed"] + g["xattn"]
    out["total"] = sum(out.values())
    out["trainable"] = trainable
    return out


# --- the registry ---------------------------------------------------------------------------------------

_BASE_VISION = VisionConfig(embed_dim=(128, 256, 512, 1024), num_heads=(4, 8, 16, 32), projection_dim=768)
_LARGE_VISION = VisionConfig(embed_dim=(256, 512, 1024, 2048), num_heads=(8, 16, 32, 64), projection_dim=1024)
_LARGE_ENCODER = BartConfigLite(layers=12, d_model=1024, heads=16, ffn=4096, vocab=51_328, max_positions=4096)
_GEMMA_ENCODER = BartConfigLite(layers=12, d_model=1024, heads=16, ffn=4096, vocab=51_289, max_positions=4096)

PAPER_SIZES = (
    SizeConfig(
        "F-0.4B",
        "florence",
        _BASE_VISION,
        BartConfigLite(layers=6, d_model=768, heads=12, ffn=3072, vocab=51_328, max_positions=1024),
        BartConfigLite(layers=6, d_model=768, heads=12, ffn=3072, vocab=257_024, max_positions=1024),
    ),
    SizeConfig(
        "F-1.0B",
        "florence",
        _LARGE_VISION,
        _LARGE_ENCODER,
        BartConfigLite(layers=12, d_model=1024, heads=16, ffn=4096, vocab=257_024, max_positions=4096),
    ),
    SizeConfig(
        "F-3.5B",
        "gemma",
        _LARGE_VISION,
        _GEMMA_ENCODER,
        GemmaConfigLite(layers=26, hidden=2304, ffn=9216, heads=8, kv_heads=4, head_dim=256, vocab=256_000),
    ),
    SizeConfig(
        "F-11.2B",
        "gemma",
        _LARGE_VISION,
        _GEMMA_ENCODER,
        GemmaConfigLite(layers=42, hidden=3584, ffn=14336, heads=16, kv_heads=8, head_dim=256, vocab=256_000),
    ),
)

TINY_VOCAB = 1024  # the synthetic corpus' tokenizer fits in this; data.vocab_size must not exceed it


def _tiny_vision(w: int, depth3: int = 1) -> VisionConfig:
    heads = (1, 2, 4, 8) if w >= 8 else (1, 1, 2, 4)
    return VisionConfig(
        embed_dim=(w, 2 * w, 4 * w, 8 * w),
        num_heads=heads,
        depths=(1, 1, depth3, 1),
        window_size=4,
        projection_dim=0,
        max_position_embeddings=16,
    )


# The seeing tower of the demo ladder (TS sizes): at 96² images the last map is 3×3, one token per grid cell
# of the synthetic world; the first stage is the convolutional stem alone (no DaViT block at 24×24, half the
# tower's cost). Shared by every TS size, as Florence-2-large's tower is by F-1.0B, F-3.5B and F-11.2B.
# Measured (../shared/reference/grounding.md §4 and issue 27): held-out colour/shape/size/count ≥ 0.9 after
# stage A, where the w-ladder's towers at 64² stay at chance for colour and shape.
SEEING_IMAGE_SIZE = 96


def _seeing_vision() -> VisionConfig:
    return VisionConfig(
        embed_dim=(24, 24, 48, 96),
        num_heads=(1, 2, 4, 8),
        depths=(0, 1, 1, 1),
        window_size=4,
        projection_dim=0,
        max_position_embeddings=16,
    )


def _tiny(
    name: str,
    family: str,
    w: int,
    d: int,
    enc_layers: int,
    dec_layers: int,
    heads: int,
    depth3: int = 1,
    gemma_heads: tuple[int, int, int] | None = None,
    gemma_hidden: int | None = None,
    seeing: bool = False,
) -> SizeConfig:
    """A tiny size of tower width ``w`` and encoder width ``d``. A Gemma decoder is ``gemma_hidden`` wide
    (default ``d``): its cross-attention projects the encoder's ``d`` into its own keys and values, so Gemma
    sizes of different widths can share one tower and encoder, as F-3.5B and F-11.2B do."""
    from dataclasses import replace

    vision = replace(_seeing_vision() if seeing else _tiny_vision(w, depth3), projection_dim=d)
    encoder = BartConfigLite(
        layers=enc_layers, d_model=d, heads=heads, ffn=4 * d, vocab=TINY_VOCAB, max_positions=128
    )
    if family == "florence":
        decoder: BartConfigLite | GemmaConfigLite = BartConfigLite(
            layers=dec_layers, d_model=d, heads=heads, ffn=4 * d, vocab=TINY_VOCAB, max_positions=128
        )
    else:
        hidden = gemma_hidden or d
        h, kvh, hd = gemma_heads or (heads, max(1, heads // 2), hidden // heads)
        decoder = GemmaConfigLite(
            layers=dec_layers,
            hidden=hidden,
            ffn=4 * hidden,
            heads=h,
            kv_heads=kvh,
            head_dim=hd,
            vocab=TINY_VOCAB,
            query_pre_attn_scalar=hd,
            sliding_window=128,
            max_positions=128,
        )
    image_size = SEEING_IMAGE_SIZE if seeing else 64
    return SizeConfig(
        name, family, vision, encoder, decoder, image_size=image_size, prompt_len=48, target_len=40, tiny=True
    )  # type: ignore[arg-type]


# Tiny ladder: names carry the analytic P (checked by a test to within 15%).
TINY_SIZES = (
    _tiny("T-0.03M", "florence", w=2, d=8, enc_layers=1, dec_layers=1, heads=2),
    _tiny("T-0.06M", "florence", w=2, d=16, enc_layers=1, dec_layers=1, heads=2),
    _tiny("T-0.12M", "florence", w=2, d=32, enc_layers=1, dec_layers=1, heads=2),
    _tiny("T-0.2M", "florence", w=4, d=48, enc_layers=1, dec_layers=1, heads=2),
    _tiny("T-0.5M", "florence", w=8, d=80, enc_layers=1, dec_layers=1, heads=4),
    _tiny("T-1.3M", "florence", w=12, d=112, enc_layers=2, dec_layers=2, heads=4),
    _tiny("T-3.7M", "florence", w=16, d=176, enc_layers=3, dec_layers=3, heads=4),
    _tiny("T-10M", "florence", w=24, d=256, enc_layers=4, dec_layers=4, heads=8, depth3=2),
    _tiny("T-25M", "florence", w=32, d=384, enc_layers=5, dec_layers=5, heads=8, depth3=2),
    # The Gemma ladder (sweeps/demo_gemma.yaml): one tower and encoder (w=12, d=112, 1 layer), wider and
    # deeper Gemma decoders, so the sizes share their Florence components and differ in the decoder only.
    _tiny("TG-1.2M", "gemma", w=12, d=112, enc_layers=1, dec_layers=2, heads=4),
    _tiny("TG-2.2M", "gemma", w=12, d=112, enc_layers=1, dec_layers=3, heads=4, gemma_hidden=160),
    _tiny("TG-4.4M", "gemma", w=12, d=112, enc_layers=1, dec_layers=4, heads=4, gemma_hidden=224),
    _tiny("TG-8M", "gemma", w=24, d=256, enc_layers=2, dec_layers=4, heads=4),
    # The demo ladder (sweeps/demo.yaml): T-0.5M / T-1.3M / T-3.7M's encoders and decoders on the one seeing
    # tower at 96² (w is unused); P_t is theirs, P differs by the tower.
    _tiny("TS-0.7M", "florence", w=0, d=80, enc_layers=1, dec_layers=1, heads=4, seeing=True),
    _tiny("TS-1.3M", "florence", w=0, d=112, enc_layers=2, dec_layers=2, heads=4, seeing=True),
    _tiny("TS-3.4M", "florence", w=0, d=176, enc_layers=3, dec_layers=3, heads=4, seeing=True),
)

SIZES: dict[str, SizeConfig] = {s.name: s for s in PAPER_SIZES + TINY_SIZES}


def get_size(name: str) -> SizeConfig:
    """Look up a size by name; the error lists the valid names."""
    try:
        return SIZES[name]
    except KeyError:
        raise KeyError(f"unknown size {name!r}; choose from {', '.join(SIZES)}") from None


# F per size, measured: package data (importlib.resources, so an installed wheel has it); `model.flops`
# rewrites it in a source checkout.
FLOPS_RESOURCE = files("florenz_scaling.spec") / "fwd_gmacs.json"
FLOPS_FILE = Path(str(FLOPS_RESOURCE))


REFRESH_FLOPS = "python -m florenz_scaling.model.flops"


@cache
def flops_table() -> dict[str, float]:
    """Measured forward GMACs per size name, as cached in ``fwd_gmacs.json``."""
    if not FLOPS_RESOURCE.is_file():
        return {}
    return {k: float(v) for k, v in json.loads(FLOPS_RESOURCE.read_text())["fwd_gmacs"].items()}


def fwd_gmacs(name: str) -> float:
    """F of size ``name`` from the cache; measuring it needs torch, so a miss is an error, never a build."""
    table = flops_table()
    if name not in table:
        raise KeyError(
            f"no measured forward GMACs for size {name!r} in {FLOPS_FILE.name}; run `{REFRESH_FLOPS}` "
            "after changing the size registry"
        )
    return table[name]


def compute_gmacs(seen_samples: float, fwd_gmacs: float, params: int, trainable_params: int) -> float:
    """The paper's training compute C = S · F · (1 + P_t / P), in GMACs."""
    return seen_samples * fwd_gmacs * (1 + trainable_params / params)
