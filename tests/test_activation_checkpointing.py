"""Activation checkpointing: per size from the spec, the same gradients, and the layers really recomputed."""

from __future__ import annotations

import pytest
import torch

from florenz_scaling.model.florenz import build_model, token_loss
from florenz_scaling.spec import SpecError, TrainSpec


def _batch(size_name: str, n: int = 3) -> dict[str, torch.Tensor]:
    model = build_model(size_name, device="meta")
    g = torch.Generator().manual_seed(0)
    s = model.size
    return {
        "pixel_values": torch.randn(n, 3, s.image_size, s.image_size, generator=g),
        "input_ids": torch.randint(0, s.encoder.vocab, (n, 12), generator=g),
        "attention_mask": torch.ones(n, 12, dtype=torch.long),
        "decoder_input_ids": torch.randint(0, s.decoder.vocab, (n, 10), generator=g),
        "labels": torch.randint(0, s.decoder.vocab, (n, 10), generator=g),
    }


def _grads_and_calls(size_name: str, checkpointed: bool) -> tuple[dict[str, torch.Tensor], int]:
    model = build_model(size_name, seed=3)
    model.train()
    if checkpointed:
        model.enable_activation_checkpointing()
    # Pre-hooks on modules inside each layer: HF checkpoints a layer's forward (no hooks of its own then),
    # and a recompute may stop early, before forward hooks would run.
    calls = []
    inner = [model.encoder.layers[0].self_attn]
    if hasattr(model.decoder, "xattn"):
        inner.append(model.decoder.xattn[0].q_proj)
    else:
        inner.append(model.decoder.decoder.layers[0].self_attn)
    for module in inner:
        module.register_forward_pre_hook(lambda *_: calls.append(1))
    batch = _batch(size_name)
    torch.manual_seed(0)  # dropout, if any, draws the same numbers in both runs
    loss = token_loss(model(**batch), batch["labels"])
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return grads, len(calls)


@pytest.mark.parametrize("size_name", ["T-0.2M", "TG-1.2M"])  # a BART and a Gemma-2 decoder
def test_checkpointing_gives_the_same_gradients_and_recomputes_the_layers(size_name: str) -> None:
    plain, plain_calls = _grads_and_calls(size_name, checkpointed=False)
    ckpt, ckpt_calls = _grads_and_calls(size_name, checkpointed=True)
    assert plain_calls == 2  # one encoder layer, one decoder block: once each, forward only
    assert ckpt_calls == 4, "with checkpointing each layer runs again in the backward pass"
    assert plain.keys() == ckpt.keys() and plain
    for name in plain:
        torch.testing.assert_close(ckpt[name], plain[name], rtol=1e-5, atol=1e-7, msg=name)


def test_checkpointing_is_chosen_per_size() -> None:
    t = TrainSpec(activation_checkpointing_sizes=("F-11.2B",))
    t.validate("train")
    assert t.checkpoints_activations("F-11.2B") and not t.checkpoints_activations("F-0.4B")
    assert TrainSpec(activation_checkpointing=True).checkpoints_activations("T-0.2M")
    with pytest.raises(SpecError, match=r"activation_checkpointing_sizes\[0\].*F-99B"):
        TrainSpec(activation_checkpointing_sizes=("F-99B",)).validate("train")


def test_decoding_with_a_cache_is_unaffected() -> None:
    model = build_model("TG-1.2M", seed=1)
    model.enable_activation_checkpointing()
    model.eval()
    batch = _batch("TG-1.2M", n=2)
    with torch.no_grad():
        assert torch.isfinite(model(**batch)).all()
