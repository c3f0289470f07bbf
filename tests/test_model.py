"""The Florenz model family: every tiny size trains on CPU, gates start closed, pretrained weights load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import BartConfig, Florence2Config, Florence2ForConditionalGeneration, Gemma2ForCausalLM

from florenz_scaling.model.florenz import (
    build_model,
    dummy_batch,
    gemma_hf_config,
    per_sample_loss,
    token_loss,
    vision_hf_config,
)
from florenz_scaling.model.pretrained import load_pretrained
from florenz_scaling.spec.sizes import SIZES, TINY_SIZES


def batch_for(size, b: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    batch = dummy_batch(size, b)
    vocab = size.decoder.vocab
    batch["pixel_values"] = torch.randn(batch["pixel_values"].shape, generator=g)
    batch["input_ids"] = torch.randint(3, size.encoder.vocab, batch["input_ids"].shape, generator=g)
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    batch["attention_mask"][0, -5:] = 0  # some prompt padding
    batch["decoder_input_ids"] = torch.randint(3, vocab, batch["decoder_input_ids"].shape, generator=g)
    labels = torch.randint(3, vocab, batch["labels"].shape, generator=g)
    labels[0, -7:] = -100
    batch["labels"] = labels
    return batch


@pytest.mark.parametrize("size", TINY_SIZES, ids=lambda s: s.name)
def test_forward_backward_on_cpu(size) -> None:
    model = build_model(size, seed=0)
    batch = batch_for(size)
    logits = model(**batch)
    assert logits.shape == (2, size.target_len, size.decoder.vocab)
    loss = token_loss(logits, batch["labels"])
    assert torch.isfinite(loss) and 5.0 < loss.item() < 9.0  # ≈ ln(1024) at random init
    loss.backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"trainable {name} got no gradient"
        else:
            assert p.grad is None, f"frozen {name} got a gradient"


def test_freezing_policy() -> None:
    bart = build_model("T-0.5M", device="meta")
    assert not any(p.requires_grad for p in bart.vision_tower.parameters())
    assert not any(p.requires_grad for p in bart.multi_modal_projector.parameters())
    assert all(p.requires_grad for p in bart.encoder.parameters())
    assert all(p.requires_grad for p in bart.decoder.parameters())
    gemma = build_model("TG-1.2M", device="meta")
    trainable = {n for n, p in gemma.decoder.named_parameters() if p.requires_grad}
    assert "lm.model.embed_tokens.weight" in trainable
    assert all(n.startswith("xattn.") or n == "lm.model.embed_tokens.weight" for n in trainable)
    assert {"xattn.0.gate", "xattn.0.norm.weight", "xattn.0.k_proj.weight"} <= trainable


def test_per_sample_loss_is_a_masked_token_mean() -> None:
    logits = torch.randn(2, 4, 10)
    labels = torch.tensor([[1, 2, -100, -100], [3, 4, 5, 6]])
    loss, tokens = per_sample_loss(logits, labels)
    assert tokens.tolist() == [2, 4]
    ref0 = torch.nn.functional.cross_entropy(logits[0, :2], labels[0, :2])
    assert loss[0].item() == pytest.approx(ref0.item(), rel=1e-6)


def test_closed_gates_leave_gemma_unchanged() -> None:
    size = SIZES["TG-1.2M"]
    model = build_model(size, seed=0).eval()
    plain = Gemma2ForCausalLM(gemma_hf_config(size.decoder)).eval()
    plain.load_state_dict(model.decoder.lm.state_dict())
    batch = batch_for(size)
    with torch.no_grad():
        ours = model(**batch)
        ref = plain(input_ids=batch["decoder_input_ids"]).logits
        assert torch.equal(ours, ref)
        for xa in model.decoder.xattn:
            xa.gate.fill_(0.5)
        assert not torch.allclose(model(**batch), ref), "an open gate must let the image in"


def tiny_florence2(size) -> Florence2ForConditionalGeneration:
    enc, dec = size.encoder, size.decoder
    text = BartConfig(
        vocab_size=enc.vocab,
        d_model=enc.d_model,
        encoder_layers=enc.layers,
        decoder_layers=getattr(dec, "layers", enc.layers),
        encoder_attention_heads=enc.heads,
        decoder_attention_heads=enc.heads,
        encoder_ffn_dim=enc.ffn,
        decoder_ffn_dim=enc.ffn,
        max_position_embeddings=enc.max_positions,
    )
    return Florence2ForConditionalGeneration(
        Florence2Config(vision_config=vision_hf_config(size), text_config=text)
    )


def test_load_florence2_checkpoint_round_trip(tmp_path: Path) -> None:
    size = SIZES["T-0.5M"]
    torch.manual_seed(1)
    src = tiny_florence2(size)
    src.save_pretrained(tmp_path / "florence")
    model = build_model(size, seed=2)
    report = load_pretrained(model, florence_dir=tmp_path / "florence")
    assert report.loaded and not report.resized
    s = src.state_dict()
    own = model.state_dict()
    lm = "model.language_model"
    pairs = {
        "vision_tower.convs.0.conv.weight": "model.vision_tower.convs.0.conv.weight",
        "multi_modal_projector.image_projection.weight": "model.multi_modal_projector.image_projection."
        "weight",
        "encoder.layers.0.self_attn.q_proj.weight": f"{lm}.encoder.layers.0.self_attn.q_proj.weight",
        "decoder.decoder.layers.0.fc1.weight": "model.language_model.decoder.layers.0.fc1.weight",
        "encoder.embed_tokens.weight": "model.language_model.shared.weight",
        "decoder.decoder.embed_tokens.weight": "model.language_model.shared.weight",
    }
    for ours, theirs in pairs.items():
        assert torch.equal(own[ours], s[theirs]), ours
    for key, value in src.model.vision_tower.state_dict().items():
        assert torch.equal(own[f"vision_tower.{key}"], value)


def test_load_gemma2_checkpoint_into_a_gemma_size(tmp_path: Path) -> None:
    size = SIZES["TG-1.2M"]
    torch.manual_seed(3)
    gemma = Gemma2ForCausalLM(gemma_hf_config(size.decoder))
    gemma.save_pretrained(tmp_path / "gemma")
    torch.manual_seed(4)
    florence = tiny_florence2(size)
    florence.save_pretrained(tmp_path / "florence")
    model = build_model(size, seed=5)
    xattn_before = model.decoder.xattn[0].q_proj.weight.clone()
    report = load_pretrained(model, florence_dir=tmp_path / "florence", gemma_dir=tmp_path / "gemma")
    own = model.state_dict()
    for key, value in gemma.state_dict().items():
        assert torch.equal(own[f"decoder.lm.{key}"], value), key
    assert torch.equal(
        own["encoder.layers.0.fc1.weight"],
        florence.state_dict()["model.language_model.encoder.layers.0.fc1.weight"],
    )
    assert any(k.startswith("model.language_model.decoder.") for k in report.skipped)
    assert torch.equal(model.decoder.xattn[0].q_proj.weight, xattn_before), "new modules keep their init"
    assert torch.equal(
        model.decoder.xattn[0].norm.weight, model.decoder.lm.model.layers[0].post_attention_layernorm.weight
    )
    assert not model.decoder.lm.model.layers[0].mlp.up_proj.weight.requires_grad


def test_mismatched_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    tiny_florence2(SIZES["T-0.2M"]).save_pretrained(tmp_path / "f")
    with pytest.raises(ValueError, match=r"embed_dim is \[4, 8, 16, 32\].*T-0.5M has \[8, 16, 32, 64\]"):
        load_pretrained(build_model("T-0.5M"), florence_dir=tmp_path / "f")
    with pytest.raises(FileNotFoundError):
        load_pretrained(build_model("T-0.5M"), florence_dir=tmp_path / "missing")
