"""Stage B: English captioning from the stage-A tower, then the model saved as a tiny Florence-2.

The tower and projector stay frozen (a trainable tower collapses, see the grounding notes); the BART encoder
and decoder train, with one embedding matrix shared by encoder, decoder and LM head as in Florence-2 (which
saves it once, as ``model.language_model.shared.weight``), in the vocabulary of the encoder's tokenizer
(the English-only one of CPU runs) for prompts and English captions alike: Florence-2 has one vocabulary.
The result is written with ``Florence2ForConditionalGeneration.save_pretrained`` next to that tokenizer
(``tokenizer.json`` + ``tokenizer_config.json``), so ``from_pretrained`` and the sweep's
``pretrained: {SIZE: {florence: DIR}}`` read it exactly like a real Florence-2 directory.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from florenz_scaling.data.collate import collate
from florenz_scaling.data.stream import synthetic_sample
from florenz_scaling.data.tokenizer import Tokenizer
from florenz_scaling.model.florenz import (
    BartCrossDecoder,
    FlorenzModel,
    bart_hf_config,
    build_model,
    per_sample_loss,
    token_loss,
    vision_hf_config,
)
from florenz_scaling.pretrain.loop import heldout_scenes, scenes, train_loop
from florenz_scaling.pretrain.vision import load_vision
from florenz_scaling.spec.sizes import BartConfigLite, SizeConfig

_INPUTS = ("pixel_values", "input_ids", "attention_mask", "decoder_input_ids")


def captioning_size(size: SizeConfig, decoder: BartConfigLite) -> SizeConfig:
    """``size`` with the BART decoder stage B captions with (a Gemma size's own decoder is not Florence's)."""
    return dataclasses.replace(size, family="florence", decoder=decoder)


def _caption_batch(
    chunk: list, tokenizer: Tokenizer, text: dict[str, Any], image_size: int
) -> dict[str, Any]:
    samples = [synthetic_sample(s, "caption", "en", image_size, text["decoder_prefix"]) for s in chunk]
    return collate(samples, tokenizer, text["prompt_len"], text["target_len"])


def tie_embeddings(model: FlorenzModel) -> None:
    """Florence-2's shared vocabulary embedding: the encoder's and the decoder's (= LM head) are one."""
    assert isinstance(model.decoder, BartCrossDecoder)
    model.decoder.decoder.embed_tokens = model.encoder.embed_tokens


@torch.no_grad()
def caption_gap(
    model: FlorenzModel, held: list, tokenizer: Tokenizer, text: dict[str, Any], image_size: int
) -> dict[str, float]:
    """Held-out English caption loss and the loss with images rolled across each batch of 16 (the gap)."""
    model.eval()
    sums = {"loss": 0.0, "image_shuffled_loss": 0.0}
    n = 0
    for i in range(0, len(held) - 1, 16):
        batch = _caption_batch(held[i : i + 16], tokenizer, text, image_size)
        if len(batch["labels"]) < 2:
            continue
        inputs = {k: batch[k] for k in _INPUTS}
        true, _ = per_sample_loss(model(**inputs), batch["labels"])
        inputs["pixel_values"] = inputs["pixel_values"].roll(1, dims=0)
        rolled, _ = per_sample_loss(model(**inputs), batch["labels"])
        sums["loss"] += float(true.sum())
        sums["image_shuffled_loss"] += float(rolled.sum())
        n += len(true)
    model.train()
    out = {k: v / max(n, 1) for k, v in sums.items()}
    out["image_gap"] = out["image_shuffled_loss"] - out["loss"]
    return out


def train_florence(
    size: SizeConfig, spec: dict[str, Any], vision_dir: Path, tokenizer: Tokenizer, out: Path, heldout: int
) -> dict[str, Any]:
    """Stage B with ``tokenizer`` (the encoder's) for prompts and captions; saves the tiny Florence-2 and the
    tokenizer into ``out``; returns held-out numbers and timings."""
    r, text = spec["recipe"], spec["text"]
    image_size = spec["image_size"]
    model = build_model(captioning_size(size, BartConfigLite(**spec["decoder"])), seed=r["seed"])
    load_vision(model, vision_dir)
    tie_embeddings(model)
    params = [p for p in dict(model.named_parameters()).values() if p.requires_grad]
    stream = scenes(r["seed"], "florence", "train")

    def loss_fn(_step: int) -> torch.Tensor:
        batch = _caption_batch([next(stream) for _ in range(r["batch"])], tokenizer, text, image_size)
        return token_loss(model(**{k: batch[k] for k in _INPUTS}), batch["labels"])

    timing = train_loop(params, loss_fn, r["steps"], r["lr"], r["warmup"], out / "train_log.jsonl", "stage B")
    t0 = time.perf_counter()
    numbers = caption_gap(model, heldout_scenes(r["seed"], heldout), tokenizer, text, image_size)
    timing["eval_s"] = round(time.perf_counter() - t0, 2)
    to_florence2(model).save_pretrained(out)
    tokenizer.save(out)  # a Florence-2 directory ships its tokenizer; the vocabulary switch reads it
    return {"heldout": {"caption_en": numbers, "heldout_scenes": heldout}, "timings": {"stage_b": timing}}


# FlorenzModel prefix -> Florence2ForConditionalGeneration prefix (the inverse of model/pretrained.py's map).
_TO_FLORENCE = (
    ("vision_tower.", "model.vision_tower."),
    ("multi_modal_projector.", "model.multi_modal_projector."),
    ("encoder.", "model.language_model.encoder."),
    ("decoder.decoder.", "model.language_model.decoder."),
)


def florence2_config(size: SizeConfig) -> Any:
    """The ``Florence2Config`` of a BART-decoder size: its tower and one BART text model (shared vocab)."""
    from transformers import Florence2Config

    enc, dec = size.encoder, size.decoder
    assert isinstance(dec, BartConfigLite) and dec.d_model == enc.d_model and dec.vocab == enc.vocab
    text = bart_hf_config(enc)
    text.decoder_layers, text.decoder_attention_heads, text.decoder_ffn_dim = dec.layers, dec.heads, dec.ffn
    text.max_position_embeddings = max(enc.max_positions, dec.max_positions)
    if dec.max_positions != enc.max_positions:
        raise ValueError("Florence-2's BART uses one max_position_embeddings for encoder and decoder")
    return Florence2Config(vision_config=vision_hf_config(size), text_config=text)


def to_florence2(model: FlorenzModel) -> Any:
    """A ``Florence2ForConditionalGeneration`` holding exactly ``model``'s tower, projector, encoder and BART
    decoder (whose encoder and decoder embeddings must be one tensor, see ``tie_embeddings``)."""
    from transformers import Florence2ForConditionalGeneration

    assert isinstance(model.decoder, BartCrossDecoder)
    if not torch.equal(model.encoder.embed_tokens.weight, model.decoder.decoder.embed_tokens.weight):
        raise ValueError("Florence-2 stores one embedding: tie the encoder's and decoder's before saving")
    torch.manual_seed(0)  # the init is overwritten; seeded so that building stays deterministic
    hf = Florence2ForConditionalGeneration(florence2_config(model.size)).eval()
    mapped = {}
    for key, value in model.state_dict().items():
        for src, dst in _TO_FLORENCE:
            if key.startswith(src):
                mapped[dst + key[len(src) :]] = value
                break
    mapped["model.language_model.shared.weight"] = model.encoder.embed_tokens.weight
    missing, unexpected = hf.load_state_dict(mapped, strict=False)
    tied = {
        "lm_head.weight",
        "model.language_model.encoder.embed_tokens.weight",
        "model.language_model.decoder.embed_tokens.weight",
    }
    if set(missing) - tied or unexpected:
        raise ValueError(
            f"Florence-2 layout mismatch: missing {sorted(set(missing) - tied)[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    return hf
