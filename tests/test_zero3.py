"""ZeRO-3 builds models partitioned from the start: checked for real on two ranks, and for F-11.2B × 8 ranks
on the meta device (what each rank holds while the model is built, without building it)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from checkpoint_dirs import florence2
from train_runs import CLI, child_env, make_run

from florenz_scaling import spec
from florenz_scaling.model.florenz import build_model
from florenz_scaling.model.shard import partition_numel, zero3_footprint
from florenz_scaling.spec.sizes import SIZES


def test_f11b_on_eight_ranks_is_built_without_any_rank_holding_the_model() -> None:
    model = build_model("F-11.2B", device="meta")
    fp = zero3_footprint(model, world=8)
    print(
        f"F-11.2B ZeRO-3 x 8: {fp.total:,} params; per rank {fp.shard:,} held, build peak {fp.peak:,} "
        f"({fp.peak_fraction:.3f} of the model, at {fp.peak_module}); {fp.peak * 2 / 1e9:.2f} GB in bf16"
    )
    assert fp.total == SIZES["F-11.2B"].params
    assert fp.shard * 8 >= fp.total and fp.shard * 8 - fp.total < 8 * len(list(model.parameters()))
    # The peak is the pieces of everything built so far plus one module's own full parameters: bounded by
    # an eighth of the model plus its largest module (the 256k x 3584 Gemma-2 embedding, 0.92B).
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    assert fp.shard <= fp.peak <= fp.shard + largest
    assert fp.peak_fraction < 0.13, "no rank comes near the whole model (1.0); 1/8 is the floor"
    assert zero3_footprint(model, world=1).peak == fp.total  # one rank holds everything, as it must


def test_partition_is_even_with_padding() -> None:
    assert [partition_numel(n, 4) for n in (1, 4, 5, 8)] == [1, 1, 2, 2]
    tiny = zero3_footprint(build_model("T-0.2M", device="meta"), world=2)
    assert tiny.shard == sum(partition_numel(p.numel(), 2) for p in build_model("T-0.2M").parameters())


@pytest.mark.slow
def test_two_ranks_build_partitioned_load_pretrained_and_train(tmp_path: Path) -> None:
    src = florence2(SIZES["T-0.2M"], seed=7)
    src.save_pretrained(tmp_path / "florence-2")
    rd = make_run(
        tmp_path,
        steps=3,
        zero=3,
        world_size=2,
        global_batch=16,
        pretrained=spec.Pretrained(florence=str(tmp_path / "florence-2")),
    )
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.run(
        [*cmd, CLI, "train", str(rd.root)], env=child_env(), capture_output=True, text=True, timeout=400
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (rd.logs / "train.log").read_text()
    held = int(re.search(r"\(([\d,]+) held by this rank: ZeRO-3 partition\)", log).group(1).replace(",", ""))
    assert held == zero3_footprint(build_model("T-0.2M", device="meta"), world=2).shard
    assert "tensors loaded" in log
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    state = get_fp32_state_dict_from_zero_checkpoint(str(rd.checkpoints), tag="step00000003")
    frozen = {k: v for k, v in src.model.vision_tower.named_parameters()}
    for key, value in frozen.items():  # frozen: still exactly the checkpoint's values
        assert torch.equal(state[f"vision_tower.{key}"], value.float()), key
    assert len(frozen) > 20
    theirs = src.state_dict()
    enc = "encoder.layers.0.fc1.weight"  # trained from the checkpoint's values: close to them but moved
    start = theirs[f"model.language_model.{enc}"]
    assert not torch.equal(state[enc], start) and torch.allclose(state[enc], start, atol=0.05)
