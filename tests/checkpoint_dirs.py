"""Stand-in checkpoints in exactly the published layouts, built from small configs (no download).

- ``save_native``: transformers' ``Florence2ForConditionalGeneration.save_pretrained`` (florence-community).
- ``save_original``: Microsoft's remote-code layout (``microsoft/Florence-2-base``): ``config.json`` with
  ``auto_map``, ``vision_config.dim_embed`` and the nested DaViT/BART fields, ``pytorch_model.bin`` with
  ``vision_tower.convs.0.proj.*``, ``...spatial_block.window_attn.fn.qkv.*``, a bare ``image_projection``
  matrix, ``language_model.model.*``, ``language_model.lm_head.weight``, ``language_model.final_logits_bias``,
  and the two Python files the hub ships; those files write a marker if anything ever runs them.
- ``save_gemma``: ``Gemma2ForCausalLM.save_pretrained`` in several safetensors shards with an index.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from transformers import BartConfig, Florence2Config, Florence2ForConditionalGeneration, Gemma2ForCausalLM

from florenz_scaling.model.florenz import gemma_hf_config, vision_hf_config
from florenz_scaling.spec.sizes import BartConfigLite, SizeConfig

MARKER = "remote-code-ran"


def florence2(size: SizeConfig, seed: int = 0) -> Florence2ForConditionalGeneration:
    """A random Florence-2 of ``size``'s tower and encoder (and BART decoder; Gemma sizes: the encoder's)."""
    enc, dec = size.encoder, size.decoder
    dec = dec if isinstance(dec, BartConfigLite) else enc
    text = BartConfig(
        vocab_size=enc.vocab,
        d_model=enc.d_model,
        encoder_layers=enc.layers,
        decoder_layers=dec.layers,
        encoder_attention_heads=enc.heads,
        decoder_attention_heads=dec.heads,
        encoder_ffn_dim=enc.ffn,
        decoder_ffn_dim=dec.ffn,
        max_position_embeddings=enc.max_positions,
    )
    torch.manual_seed(seed)
    return Florence2ForConditionalGeneration(
        Florence2Config(vision_config=vision_hf_config(size), text_config=text)
    ).eval()


def save_native(model: Florence2ForConditionalGeneration, directory: Path) -> Path:
    model.save_pretrained(directory)
    return directory


# Native (transformers) name -> Microsoft's original name, written out by hand from the published layout.
_TO_ORIGINAL = (
    (r"^model\.vision_tower\.convs\.(\d+)\.conv\.", r"vision_tower.convs.\1.proj."),
    (r"^model\.vision_tower\.", "vision_tower."),
    (r"\.(spatial_block|channel_block)\.(conv1|conv2)\.", r".\1.\2.fn.dw."),
    (r"\.spatial_block\.norm1\.", ".spatial_block.window_attn.norm."),
    (r"\.channel_block\.norm1\.", ".channel_block.channel_attn.norm."),
    (r"\.window_attn\.(qkv|proj)\.", r".window_attn.fn.\1."),
    (r"\.channel_attn\.(qkv|proj)\.", r".channel_attn.fn.\1."),
    (r"\.norm2\.", ".ffn.norm."),
    (r"\.ffn\.(fc[12])\.", r".ffn.fn.net.\1."),
    (r"^model\.multi_modal_projector\.image_projection\.weight$", "image_projection"),
    (r"^model\.multi_modal_projector\.image_proj_norm\.", "image_proj_norm."),
    (r"^model\.multi_modal_projector\.image_position_embed\.", "image_pos_embed."),
    (r"^model\.multi_modal_projector\.visual_temporal_embed\.", "visual_temporal_embed."),
    (r"^model\.language_model\.", "language_model.model."),
    (r"^lm_head\.weight$", "language_model.lm_head.weight"),
)


def original_state(model: Florence2ForConditionalGeneration) -> dict[str, torch.Tensor]:
    """``model``'s tensors under Microsoft's original names (projection transposed back to ``x @ W``)."""
    out = {}
    for key, value in model.state_dict().items():
        name = key
        for pattern, repl in _TO_ORIGINAL:
            name = re.sub(pattern, repl, name)
        out[name] = value.t().contiguous() if name == "image_projection" else value.clone()
    vocab = model.config.text_config.vocab_size
    out["language_model.final_logits_bias"] = torch.zeros(1, vocab)
    return out


def original_config(model: Florence2ForConditionalGeneration) -> dict:
    """``config.json`` as Microsoft ships Florence-2 (remote code), with this model's numbers."""
    v, t = model.config.vision_config, model.config.text_config
    return {
        "_name_or_path": "florence2",
        "architectures": ["Florence2ForConditionalGeneration"],
        "auto_map": {
            "AutoConfig": "configuration_florence2.Florence2Config",
            "AutoModelForCausalLM": "modeling_florence2.Florence2ForConditionalGeneration",
        },
        "bos_token_id": 0,
        "eos_token_id": 2,
        "ignore_index": -100,
        "model_type": "florence2",
        "pad_token_id": 1,
        "projection_dim": v.projection_dim,
        "text_config": {
            "vocab_size": t.vocab_size,
            "activation_function": "gelu",
            "d_model": t.d_model,
            "decoder_attention_heads": t.decoder_attention_heads,
            "decoder_ffn_dim": t.decoder_ffn_dim,
            "decoder_layers": t.decoder_layers,
            "encoder_attention_heads": t.encoder_attention_heads,
            "encoder_ffn_dim": t.encoder_ffn_dim,
            "encoder_layers": t.encoder_layers,
            "max_position_embeddings": t.max_position_embeddings,
            "is_encoder_decoder": True,
            "model_type": "florence2_language",
        },
        "vision_config": {
            "model_type": "davit",
            "drop_path_rate": 0.1,
            "patch_size": list(v.patch_size),
            "patch_stride": list(v.patch_stride),
            "patch_padding": list(v.patch_padding),
            "patch_prenorm": list(v.patch_prenorm),
            "enable_checkpoint": False,
            "dim_embed": list(v.embed_dim),
            "num_heads": list(v.num_heads),
            "num_groups": list(v.num_groups),
            "depths": list(v.depths),
            "window_size": v.window_size,
            "projection_dim": v.projection_dim,
            "visual_temporal_embedding": {"type": "COSINE", "max_temporal_embeddings": 100},
            "image_pos_embed": {"type": "learned_abs_2d", "max_pos_embeddings": v.max_position_embeddings},
            "image_feature_source": ["spatial_avg_pool", "temporal_avg_pool"],
        },
        "vocab_size": t.vocab_size,
        "torch_dtype": "float32",
        "transformers_version": "4.41.0.dev0",
        "is_encoder_decoder": True,
    }


def save_original(
    model: Florence2ForConditionalGeneration, directory: Path, state: dict[str, torch.Tensor] | None = None
) -> Path:
    """``model`` written as Microsoft publishes Florence-2 (``state`` overrides the tensors written)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(original_config(model), indent=2))
    torch.save(original_state(model) if state is None else state, directory / "pytorch_model.bin")
    trap = f"open({str(directory / MARKER)!r}, 'w').write('executed')\n"
    for name in ("configuration_florence2.py", "modeling_florence2.py"):
        (directory / name).write_text(trap)
    return directory


def save_gemma(size: SizeConfig, directory: Path, seed: int = 0) -> Gemma2ForCausalLM:
    """A random Gemma-2 of ``size``'s decoder, saved in several safetensors shards with their index."""
    torch.manual_seed(seed)
    lm = Gemma2ForCausalLM(gemma_hf_config(size.decoder))
    lm.save_pretrained(directory, max_shard_size="200KB")
    assert (directory / "model.safetensors.index.json").is_file()
    return lm
