"""Real checkpoints in both published Florence-2 layouts and Gemma-2's: what loads, what is refused, and the
vocabulary switch — on stand-ins written in exactly the published formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from checkpoint_dirs import MARKER, florence2, original_state, save_gemma, save_native, save_original

from florenz_scaling.model import CheckpointError, build_model, load_pretrained, plan_checkpoints
from florenz_scaling.spec.sizes import SIZES


@pytest.fixture(scope="module")
def both_layouts(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path, Path]:
    root = tmp_path_factory.mktemp("florence")
    src = florence2(SIZES["T-0.5M"], seed=1)
    return src, save_native(src, root / "native"), save_original(src, root / "original")


def test_both_florence2_layouts_load_identical_tensors_and_counts(both_layouts) -> None:
    src, native, original = both_layouts
    loaded = {}
    for name, directory in (("native", native), ("original", original)):
        model = build_model("T-0.5M", seed=9)
        report = load_pretrained(model, florence_dir=directory)
        loaded[name] = (model.state_dict(), report)
    (a, ra), (b, rb) = loaded["native"], loaded["original"]
    assert ra.layouts == ["florence2-native"] and rb.layouts == ["florence2-original"]
    assert sorted(ra.loaded) == sorted(rb.loaded) and len(ra.loaded) == len(a) == 200
    assert not ra.at_init and not rb.at_init
    for key in a:
        assert torch.equal(a[key], b[key]), key
    theirs = src.state_dict()
    proj = "multi_modal_projector.image_projection.weight"
    assert torch.equal(b[proj], theirs[f"model.{proj}"])  # transposed back from Microsoft's x @ W
    qkv = "vision_tower.blocks.2.0.spatial_block.window_attn.qkv.weight"
    assert torch.equal(b[qkv], theirs[f"model.{qkv}"])
    assert sorted(rb.skipped) == ["language_model.final_logits_bias", "language_model.lm_head.weight"]
    assert not (original / MARKER).exists(), "a checkpoint's Python files must never run"


def _error(directory: Path, size: str = "T-0.5M", **kw) -> str:
    with pytest.raises(CheckpointError) as e:
        load_pretrained(build_model(size, seed=0), florence_dir=directory, **kw)
    return str(e.value)


def test_a_removed_tensor_an_extra_key_and_a_bad_shape_are_refused(both_layouts, tmp_path: Path) -> None:
    src = both_layouts[0]
    state = original_state(src)
    del state["vision_tower.blocks.1.0.channel_block.ffn.fn.net.fc2.weight"]
    msg = _error(save_original(src, tmp_path / "removed", state))
    assert "layout florence2-original" in msg and "1 required tensors missing" in msg
    assert "vision_tower.blocks.*" in msg and "pretrained check" in msg

    state = original_state(src) | {"vision_tower.extra_head.weight": torch.zeros(3)}
    msg = _error(save_original(src, tmp_path / "extra", state))
    assert "1 unexpected keys: vision_tower.extra_head.weight (1)" in msg

    state = original_state(src)
    state["image_projection"] = torch.zeros(7, 7)
    msg = _error(save_original(src, tmp_path / "shape", state))
    assert "image_projection (7, 7) -> multi_modal_projector.image_projection.weight (80, 64)" in msg


def test_a_config_of_another_size_is_refused_naming_field_and_values(tmp_path: Path) -> None:
    other = save_original(florence2(SIZES["T-1.3M"]), tmp_path / "t13")
    msg = _error(other)
    assert "vision_config.dim_embed is [12, 24, 48, 96]" in msg and "T-0.5M has [8, 16, 32, 64]" in msg
    config = json.loads((tmp_path / "t13" / "config.json").read_text())
    native = save_native(florence2(SIZES["T-1.3M"]), tmp_path / "native")
    assert "vision_config.embed_dim is [12, 24, 48, 96]" in _error(native)
    del config["auto_map"], config["vision_config"]["dim_embed"]
    (tmp_path / "t13" / "config.json").write_text(json.dumps(config))
    assert "cannot tell the Florence-2 layout" in _error(other)


def test_the_vocabulary_switch_starts_each_row_as_the_mean_of_its_pieces(both_layouts) -> None:
    src, _, original = both_layouts
    shared = src.state_dict()["model.language_model.shared.weight"]
    pieces = [[] for _ in range(1024)]
    pieces[0], pieces[1], pieces[5], pieces[700] = [1], [0], [10, 11, 12], [900, 3]
    model = build_model("T-0.5M", seed=3)
    before = model.decoder.decoder.embed_tokens.weight.detach().clone()
    report = load_pretrained(model, florence_dir=original, decoder_pieces=pieces)
    rows = model.decoder.decoder.embed_tokens.weight.detach()
    assert torch.allclose(rows[5], (shared[10] + shared[11] + shared[12]) / 3)
    assert torch.allclose(rows[700], (shared[900] + shared[3]) / 2)
    assert torch.equal(rows[0], shared[1]) and torch.equal(rows[1], shared[0])
    assert torch.equal(rows[2], before[2]), "a row without pieces keeps its init"
    assert report.switched_rows == 4 and report.rows_at_init == 1020
    assert torch.equal(model.encoder.embed_tokens.weight, shared), "the encoder keeps the checkpoint's ids"
    enc, ids = torch.randn(1, 2, 80), torch.tensor([[5, 700]])
    hidden = model.decoder.decoder(input_ids=ids, encoder_hidden_states=enc).last_hidden_state
    assert torch.allclose(model.decoder(ids, enc, None), hidden @ rows.T), "the LM head is tied to the rows"


def test_a_gemma_size_loads_a_sharded_gemma2_and_an_original_florence2(tmp_path: Path) -> None:
    size = SIZES["TG-1.2M"]
    lm = save_gemma(size, tmp_path / "gemma", seed=4)
    assert len(list((tmp_path / "gemma").glob("*.safetensors"))) > 1
    florence = save_original(florence2(size, seed=5), tmp_path / "florence")
    plan = plan_checkpoints(size, florence, tmp_path / "gemma")
    assert {p.layout.name for p in plan.checkpoints} == {"florence2-original", "gemma2"}
    assert plan.at_init and all(k.startswith("decoder.xattn.") for k in plan.at_init)
    ignored = plan.checkpoints[0].ignored
    assert any(k.startswith("language_model.model.decoder.") for k in ignored)
    model = build_model(size, seed=6)
    report = load_pretrained(model, florence_dir=florence, gemma_dir=tmp_path / "gemma")
    own = model.state_dict()
    for key, value in lm.state_dict().items():
        assert torch.equal(own[f"decoder.lm.{key}"], value), key
    assert report.at_init == plan.at_init
    wrong = tmp_path / "gemma" / "config.json"
    wrong.write_text(json.dumps(json.loads(wrong.read_text()) | {"num_key_value_heads": 4}))
    with pytest.raises(CheckpointError, match="num_key_value_heads is 4 .* TG-1.2M has 2"):
        plan_checkpoints(size, florence, tmp_path / "gemma")
