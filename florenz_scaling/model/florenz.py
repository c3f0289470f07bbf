"""The Florenz model family, built from Hugging Face parts and a size config (random init, no hub).

    image ─▶ DaViT (Florence-2 vision tower) ─▶ projector ─┐
    prompt ─▶ embeddings ───────────────────────────────────┴▶ BART encoder ─▶ enc
    decoder tokens ─▶ BART decoder (cross-attends enc)                         │
                   or Gemma-2 with h = h + tanh(g)·RMSNorm(XAttn(h, enc)) ◀────┘ in every layer

The batch contract (from ``florenz_scaling.data``): pixel_values (B,3,H,W), input_ids / attention_mask
(B,Lp), decoder_input_ids / labels (B,Ld) with -100 where nothing is scored.

Incremental decoding (``train.generate``): both decoders take an optional ``cache`` from their ``new_cache()``
(BART: Hugging Face's ``EncoderDecoderCache``; Gemma: ``CrossAttentionCache``, HF's self-attention cache plus
each layer's cross-attention keys/values, projected from the encoder output once) and then return logits for
the new tokens only.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn
from transformers import BartConfig, Florence2Config, Florence2VisionConfig, Gemma2Config, Gemma2ForCausalLM
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.models.bart.modeling_bart import BartDecoder, BartEncoder
from transformers.models.florence2.modeling_florence2 import (
    Florence2MultiModalProjector,
    Florence2VisionBackbone,
)
from transformers.models.gemma2.modeling_gemma2 import Gemma2RMSNorm

from florenz_scaling.spec.sizes import BartConfigLite, GemmaConfigLite, SizeConfig, VisionConfig, get_size


def vision_hf_config(size: SizeConfig | VisionConfig) -> Florence2VisionConfig:
    v = size.vision if isinstance(size, SizeConfig) else size
    return Florence2VisionConfig(
        embed_dim=list(v.embed_dim),
        num_heads=list(v.num_heads),
        num_groups=list(v.num_heads),
        depths=list(v.depths),
        patch_size=list(v.patch_size),
        patch_stride=list(v.patch_stride),
        patch_padding=list(v.patch_padding),
        patch_prenorm=list(v.patch_prenorm),
        window_size=v.window_size,
        mlp_ratio=v.mlp_ratio,
        projection_dim=v.projection_dim,
        max_position_embeddings=v.max_position_embeddings,
        drop_path_rate=0.0,
    )


def bart_hf_config(b: BartConfigLite) -> BartConfig:
    return BartConfig(
        vocab_size=b.vocab,
        d_model=b.d_model,
        encoder_layers=b.layers,
        decoder_layers=b.layers,
        encoder_attention_heads=b.heads,
        decoder_attention_heads=b.heads,
        encoder_ffn_dim=b.ffn,
        decoder_ffn_dim=b.ffn,
        max_position_embeddings=b.max_positions,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        scale_embedding=False,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )


def gemma_hf_config(g: GemmaConfigLite) -> Gemma2Config:
    cfg = Gemma2Config(
        vocab_size=g.vocab,
        hidden_size=g.hidden,
        intermediate_size=g.ffn,
        num_hidden_layers=g.layers,
        num_attention_heads=g.heads,
        num_key_value_heads=g.kv_heads,
        head_dim=g.head_dim,
        attn_logit_softcapping=g.attn_softcap,
        final_logit_softcapping=g.final_softcap,
        query_pre_attn_scalar=g.query_pre_attn_scalar,
        sliding_window=g.sliding_window,
        max_position_embeddings=g.max_positions,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=True,
    )
    cfg._attn_implementation = "eager"  # soft-capped attention logits need the eager kernel
    return cfg


class GatedCrossAttention(nn.Module):
    """``tanh(g) · RMSNorm(XAttn(h, enc))`` with Gemma's heads, K/V from the encoder width, no RoPE."""

    def __init__(self, g: GemmaConfigLite, enc_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = g.heads, g.kv_heads, g.head_dim
        self.softcap = g.attn_softcap
        self.scaling = g.query_pre_attn_scalar**-0.5
        self.q_proj = nn.Linear(g.hidden, g.heads * g.head_dim, bias=False)
        self.k_proj = nn.Linear(enc_dim, g.kv_heads * g.head_dim, bias=False)
        self.v_proj = nn.Linear(enc_dim, g.kv_heads * g.head_dim, bias=False)
        self.o_proj = nn.Linear(g.heads * g.head_dim, g.hidden, bias=False)
        self.norm = Gemma2RMSNorm(g.hidden, eps=eps)
        # Zero gate: the model starts out exactly as plain Gemma-2.
        self.gate = nn.Parameter(torch.zeros(1))

    def key_values(self, enc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (B, heads, S, head_dim) of the encoder output: all a decoding cache needs."""
        b, s, _ = enc.shape
        k = self.k_proj(enc).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(enc).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        rep = self.heads // self.kv_heads
        return k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)

    def forward(
        self,
        h: torch.Tensor,
        enc: torch.Tensor,
        enc_mask: torch.Tensor | None,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        b, t, _ = h.shape
        q = self.q_proj(h).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k, v = kv if kv is not None else self.key_values(enc)
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.scaling
        scores = torch.tanh(scores / self.softcap) * self.softcap
        if enc_mask is not None:
            scores = scores.masked_fill(~enc_mask[:, None, None, :].bool(), torch.finfo(scores.dtype).min)
        attn = torch.softmax(scores.float(), dim=-1).to(q.dtype)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, t, -1)
        return torch.tanh(self.gate) * self.norm(self.o_proj(out))


class CrossAttentionCache:
    """Incremental-decoding state of ``GemmaCrossDecoder``: Hugging Face's self-attention cache (sliding
    layers included) and every layer's cross-attention keys/values, filled on the first call."""

    def __init__(self, config: Gemma2Config) -> None:
        self.self_attention = DynamicCache(config=config)
        self.cross: list[tuple[torch.Tensor, torch.Tensor]] = []

    def get_seq_length(self) -> int:
        return self.self_attention.get_seq_length()

    def reorder_cache(self, index: torch.Tensor) -> None:
        """Keep rows ``index`` (beam search: each new beam's parent)."""
        self.self_attention.reorder_cache(index)
        self.cross = [(k.index_select(0, index), v.index_select(0, index)) for k, v in self.cross]


class GemmaCrossDecoder(nn.Module):
    """Gemma-2 (kept as a whole ``Gemma2ForCausalLM`` so checkpoints load by name) plus gated cross-attention
    after self-attention and before the MLP in every layer."""

    def __init__(self, g: GemmaConfigLite, enc_dim: int) -> None:
        super().__init__()
        self.config = gemma_hf_config(g)
        self.lm = Gemma2ForCausalLM(self.config)
        self.xattn = nn.ModuleList(
            GatedCrossAttention(g, enc_dim, self.config.rms_norm_eps) for _ in range(g.layers)
        )
        self.activation_checkpointing = False  # the layer loop is ours, so is its checkpointing

    def new_cache(self) -> CrossAttentionCache:
        return CrossAttentionCache(self.config)

    def forward(
        self,
        input_ids: torch.Tensor,
        enc: torch.Tensor | None,
        enc_mask: torch.Tensor | None,
        cache: CrossAttentionCache | None = None,
    ) -> torch.Tensor:
        """Logits of ``input_ids``; with ``cache``, they continue the cached tokens (and extend the cache)."""
        from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

        model = self.lm.model
        h = model.embed_tokens(input_ids)
        past = cache.get_seq_length() if cache is not None else 0
        pos = torch.arange(past, past + h.shape[1], device=h.device).unsqueeze(0)
        if cache is not None and enc is not None and not cache.cross:
            cache.cross = [xa.key_values(enc) for xa in self.xattn]
        self_cache = cache.self_attention if cache is not None else None
        kw = {
            "config": self.config,
            "inputs_embeds": h,
            "attention_mask": None,
            "cache": self_cache,
            "position_ids": pos if cache is not None else None,
        }  # no packed sequences to detect
        masks = {
            "full_attention": create_causal_mask(**kw),
            "sliding_attention": create_sliding_window_causal_mask(**kw),
        }
        rope = model.rotary_emb(h, pos)

        def block(i: int, h: torch.Tensor, enc: torch.Tensor | None) -> torch.Tensor:
            layer = model.layers[i]
            x, _ = layer.self_attn(
                hidden_states=layer.input_layernorm(h),
                position_embeddings=rope,
                attention_mask=masks[self.config.layer_types[i]],
                position_ids=pos,
                cache=self_cache,
            )
            h = h + layer.post_attention_layernorm(x)
            if enc is not None:
                h = h + self.xattn[i](h, enc, enc_mask, cache.cross[i] if cache is not None else None)
            return h + layer.post_feedforward_layernorm(layer.mlp(layer.pre_feedforward_layernorm(h)))

        recompute = self.activation_checkpointing and self.training and cache is None
        for i in range(len(model.layers)):
            if recompute:  # keep only each block's input; its activations are recomputed in backward
                h = torch.utils.checkpoint.checkpoint(block, i, h, enc, use_reentrant=False)
            else:
                h = block(i, h, enc)
        h = model.norm(h)
        logits = self.lm.lm_head(h)
        cap = self.config.final_logit_softcapping
        return torch.tanh(logits / cap) * cap if cap else logits


class BartCrossDecoder(nn.Module):
    """Florence-2's BART decoder with its own (decoder-vocabulary) embeddings and a tied LM head."""

    def __init__(self, b: BartConfigLite) -> None:
        super().__init__()
        self.decoder = BartDecoder(bart_hf_config(b))

    def new_cache(self) -> EncoderDecoderCache:
        config = self.decoder.config
        return EncoderDecoderCache(DynamicCache(config=config), DynamicCache(config=config))

    def forward(
        self,
        input_ids: torch.Tensor,
        enc: torch.Tensor | None,
        enc_mask: torch.Tensor | None,
        cache: EncoderDecoderCache | None = None,
    ) -> torch.Tensor:
        """Logits of ``input_ids``; with ``cache``, they continue the cached tokens (and extend the cache)."""
        h = self.decoder(
            input_ids=input_ids,
            encoder_hidden_states=enc,
            encoder_attention_mask=enc_mask,
            cache=cache,
            use_cache=cache is not None,
        ).last_hidden_state
        return F.linear(h, self.decoder.embed_tokens.weight)


def vision_modules(vision: VisionConfig) -> tuple[nn.Module, nn.Module]:
    """Florence-2's DaViT tower and its multi-modal projector (into ``vision.projection_dim``)."""
    vc = vision_hf_config(vision)
    vc._attn_implementation = "sdpa"
    tower = Florence2VisionBackbone(copy.deepcopy(vc))
    # Florence2Config resets the vision config's attention implementation, hence the copy above.
    return tower, Florence2MultiModalProjector(Florence2Config(vision_config=copy.deepcopy(vc)))


class FlorenzModel(nn.Module):
    """A Florenz model: image + prompt → encoder; decoder tokens → logits over the decoder vocabulary."""

    def __init__(self, size: SizeConfig) -> None:
        super().__init__()
        self.size = size
        self.vision_tower, self.multi_modal_projector = vision_modules(size.vision)
        self.encoder = BartEncoder(bart_hf_config(size.encoder))
        if isinstance(size.decoder, BartConfigLite):
            self.decoder: nn.Module = BartCrossDecoder(size.decoder)
        else:
            self.decoder = GemmaCrossDecoder(size.decoder, size.encoder.d_model)
        self.apply_freezing()

    def apply_freezing(self) -> None:
        """The paper's policy: vision tower and projection frozen; in Gemma sizes only cross-attention,
        gates, new norms and the (tied) embeddings of the decoder train."""
        for p in self.vision_tower.parameters():
            p.requires_grad_(False)
        for p in self.multi_modal_projector.parameters():
            p.requires_grad_(False)
        if isinstance(self.decoder, GemmaCrossDecoder):
            for p in self.decoder.lm.parameters():
                p.requires_grad_(False)
            self.decoder.lm.model.embed_tokens.weight.requires_grad_(True)

    def enable_activation_checkpointing(self) -> None:
        """Recompute the trained layers' activations in the backward pass (less memory, ~1/3 more compute;
        the same gradients). The frozen vision tower keeps no activations for backward anyway."""
        kwargs = {"use_reentrant": False}  # reentrant checkpointing drops gradients of inputs without grad
        self.encoder.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        if isinstance(self.decoder, GemmaCrossDecoder):
            self.decoder.activation_checkpointing = True
        else:
            self.decoder.decoder.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)

    def encode(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        feats = self.vision_tower(
            pixel_values.to(self.vision_tower.convs[0].conv.weight.dtype)
        ).last_hidden_state
        image = self.multi_modal_projector(feats)
        prompt = self.encoder.embed_tokens(input_ids)
        embeds = torch.cat([image.to(prompt.dtype), prompt], dim=1)
        mask = None  # no padding (e.g. the FLOP counter's dummy sample on meta tensors)
        if attention_mask is not None:
            mask = torch.cat([attention_mask.new_ones(image.shape[:2]), attention_mask], dim=1)
        enc = self.encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        return enc, mask

    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        decoder_input_ids: torch.Tensor,
        **_: object,
    ) -> torch.Tensor:
        """Logits (B, Ld, V) for the decoder tokens; extra batch keys (labels, task, lang) are ignored."""
        enc, mask = self.encode(pixel_values, input_ids, attention_mask)
        return self.decoder(decoder_input_ids, enc, mask)


def build_model(
    size: SizeConfig | str, device: str | torch.device = "cpu", seed: int | None = None
) -> FlorenzModel:
    """Build a size with random init (``device="meta"`` builds without allocating memory)."""
    size = get_size(size) if isinstance(size, str) else size
    if seed is not None:
        torch.manual_seed(seed)
    with torch.device(device):
        return FlorenzModel(size)


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked token-mean cross-entropy per sample (the paper's held-out loss) and scored tokens per sample."""
    ce = F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100, reduction="none")
    tokens = (labels != -100).sum(dim=1)
    return ce.sum(dim=1) / tokens.clamp(min=1), tokens


def token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Training loss: cross-entropy averaged over all scored tokens of the batch (HF's default)."""
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
    )


def count_module_params(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameters of a module, counting each tied tensor once."""
    seen: dict[int, nn.Parameter] = {}
    for p in model.parameters():
        seen.setdefault(id(p), p)
    total = sum(p.numel() for p in seen.values())
    return total, sum(p.numel() for p in seen.values() if p.requires_grad)


def dummy_batch(
    size: SizeConfig, batch: int = 1, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """The paper's dummy sample for F: an image, ``prompt_len`` prompt and ``target_len`` decoder tokens."""
    dec_vocab = size.decoder.vocab
    with torch.device(device):
        return {
            "pixel_values": torch.zeros(batch, 3, size.image_size, size.image_size),
            "input_ids": torch.ones(batch, size.prompt_len, dtype=torch.long),
            "decoder_input_ids": torch.ones(batch, size.target_len, dtype=torch.long) % dec_vocab,
            "labels": torch.ones(batch, size.target_len, dtype=torch.long),
        }


# --- pretrained weights from local directories (Hugging Face ``save_pretrained`` layout) -----------------
