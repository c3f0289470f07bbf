"""Per-rank memory under ZeRO (``model.memory``) and the check ``launch`` and ``--dry-run`` share
(``launch.dryrun.meta``): numbers against the ZeRO paper's formulas worked by hand, the paper sizes against
GPUs, and plans that cannot fit refused before anything is submitted, naming the field to change."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_sweeps import TINY_DEMO
from torch import nn

from florenz_scaling.cli import main as cli_main
from florenz_scaling.launch.dryrun import format_dry_run
from florenz_scaling.launch.dryrun.meta import check_memory, rank_limit, size_fits, training_precision
from florenz_scaling.launch.submit import launch
from florenz_scaling.model.memory import RankMemory, model_memory, size_memory
from florenz_scaling.plan import make_plan
from florenz_scaling.spec import SpecError, load_sweep
from florenz_scaling.spec.sizes import get_size

REPO = Path(__file__).resolve().parents[1]
GIB = 2**30
PAPER = REPO / "sweeps" / "florenz_paper.yaml"
ONE_11B = ["sizes=[F-11.2B]", "grid.steps=[500]", "extra_runs=[]"]


def _toy() -> nn.Module:
    """77 trainable parameters (a 10->7 linear) and 24 frozen ones (7->3), like a frozen vision tower."""
    model = nn.Sequential(nn.Linear(10, 7), nn.Linear(7, 3))
    for p in model[1].parameters():
        p.requires_grad_(False)
    return model


# Worked by hand over 4 ranks: ceil(77 / 4) = 20 elements of the flat trainable buffer (stages 1-2); at
# stage 3 each parameter on its own: ceil(70/4) + ceil(7/4) = 18 + 2 = 20 trainable, + ceil(21/4) + ceil(3/4)
# = 6 + 1 frozen = 27 in all. bf16: 2-byte weights and grads, 12 bytes of Adam state per trainable element.
HAND = {
    (0, "bf16"): (2 * 101, 2 * 77, 12 * 77),
    (1, "bf16"): (2 * 101, 2 * 77, 12 * 20),
    (2, "bf16"): (2 * 101, 2 * 20, 12 * 20),
    (3, "bf16"): (2 * 27, 2 * 20, 12 * 20),
    (0, "fp32"): (4 * 101, 4 * 77, 8 * 77),  # fp32: no master copy, Adam's two moments
    (2, "fp32"): (4 * 101, 4 * 20, 8 * 20),
    (3, "fp32"): (4 * 27, 4 * 20, 8 * 20),
}


@pytest.mark.parametrize(("stage", "precision"), sorted(HAND))
def test_toy_model_matches_the_zero_formulas_by_hand(stage: int, precision: str) -> None:
    m = model_memory(_toy(), stage, 4, precision)
    assert (m.params, m.grads, m.optimizer) == HAND[stage, precision]
    assert m.total == sum(HAND[stage, precision])


def test_zero3_build_peak_is_the_largest_module_built_on_top_of_the_pieces_so_far() -> None:
    # zero.Init partitions each Linear once built: the first one's 77 full elements (nothing held yet) are
    # the peak; the second adds its 24 full to the first's 20 pieces = 44.
    m = model_memory(_toy(), 3, 4, "bf16")
    assert m.build_peak == 2 * 77 and m.peak == m.total
    assert model_memory(_toy(), 2, 4, "bf16").build_peak is None


def test_one_rank_partitions_nothing_and_tied_weights_count_once() -> None:
    assert [model_memory(_toy(), s, 1, "bf16").total for s in range(4)] == [2 * 101 + 14 * 77] * 4
    tied = nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 5, bias=False))
    tied[1].weight = tied[0].weight
    assert model_memory(tied, 0, 1, "fp32").params == 4 * 20


def test_a_registered_size_counts_its_frozen_parameters_as_weights_only() -> None:
    size = get_size("T-0.5M")
    m = size_memory("T-0.5M", 0, 1, "fp32")
    assert (m.params, m.grads, m.optimizer) == (
        4 * size.params,
        4 * size.trainable_params,
        8 * size.trainable_params,
    )


def test_bad_stage_or_precision() -> None:
    with pytest.raises(ValueError, match="stage"):
        model_memory(_toy(), 4, 1, "bf16")
    with pytest.raises(ValueError, match="precision"):
        model_memory(_toy(), 0, 1, "fp8")


def test_f11b_zero3_on_8_ranks_fits_an_80gb_gpu_with_a_bounded_build_peak() -> None:
    m = size_memory("F-11.2B", 3, 8, "bf16")
    size = get_size("F-11.2B")
    assert m.total < 80 * GIB and m.peak < 8 * GIB
    # No rank ever holds the whole model: the build peak is a small fraction of its 2-byte weights.
    assert m.build_peak is not None and m.build_peak < 0.2 * 2 * size.params
    assert m.params == pytest.approx(2 * size.params / 8, rel=1e-3)
    spec = load_sweep(PAPER, [*ONE_11B, "train.zero_stage=3", "launch.profile.gpu_mem_gb=80"])
    (fit,) = check_memory(spec, make_plan(spec))
    assert fit.fits and fit.memory == m


def test_f11b_zero0_on_one_rank_is_refused_naming_the_field() -> None:
    # Only 2.5B of its 11.2B parameters train (frozen vision tower and Gemma LM), so ZeRO-0 needs ~54 GiB:
    # an 80 GB GPU holds it, a 40 GB one does not.
    m = size_memory("F-11.2B", 0, 1, "bf16")
    assert 50 * GIB < m.total < 80 * GIB
    one = [*ONE_11B, "train.zero_stage=0", "train.world_size=1", "launch.resources.tasks_per_node=1"]
    spec = load_sweep(PAPER, [*one, "launch.profile.gpu_mem_gb=40"])
    with pytest.raises(SpecError) as err:
        check_memory(spec, make_plan(spec))
    assert err.value.field_path == "launch.resources / train.zero_stage"
    text = str(err.value)
    assert "F-11.2B needs 53.95 GiB per rank" in text and "at ZeRO-0 over 1 rank in bf16" in text
    assert (
        "train.zero_stage 3 over 2 ranks (nodes × tasks_per_node in launch.resources, and train.world_size)"
        in text
    )
    spec = load_sweep(PAPER, [*one, "launch.profile.gpu_mem_gb=80"])
    assert all(f.fits for f in check_memory(spec, make_plan(spec)))


def test_a_per_size_override_is_the_field_named_and_a_higher_stage_is_offered() -> None:
    over = [*ONE_11B, "train.zero_stage=1", "launch.profile.gpu_mem_gb=20"]
    spec = load_sweep(PAPER, [*over, "launch.per_size={F-11.2B: {timeout_min: 4320}}"])
    with pytest.raises(SpecError) as err:
        check_memory(spec, make_plan(spec))
    assert err.value.field_path == "launch.per_size.F-11.2B / train.zero_stage"
    assert "raise train.zero_stage to 3 (6.74 GiB per rank)" in str(err.value)
    assert "more ranks" not in str(err.value)  # ZeRO-1 keeps the full weights on every rank: 21 GiB > 20


def test_without_gpu_memory_nothing_is_refused_and_the_dry_run_says_so() -> None:
    spec = load_sweep(
        PAPER, [*ONE_11B, "train.zero_stage=0", "train.world_size=1", "launch.resources.tasks_per_node=1"]
    )
    (fit,) = check_memory(spec, make_plan(spec))
    assert fit.limit is None and fit.fits
    text = format_dry_run(spec, make_plan(spec), "slurm")
    assert "not checked: launch.profile.gpu_mem_gb is not set" in text


def test_limits_per_rank() -> None:
    spec = load_sweep(TINY_DEMO)
    res = spec.launch.resources
    assert rank_limit(spec, res) == (res.mem_gb * GIB, "2.00 GiB (mem_gb=2 / 1 task)")
    two = load_sweep(
        TINY_DEMO,
        ["launch.resources.tasks_per_node=2", "train.world_size=2", "train.micro_batch=8"],
    )
    assert rank_limit(two, two.launch.resources)[0] == res.mem_gb / 2 * GIB  # the node's memory, split
    shared = load_sweep(PAPER, ["launch.resources.gpus_per_node=2", "launch.profile.gpu_mem_gb=80"])
    assert rank_limit(shared, shared.launch.resources) == (
        20 * GIB,
        "20.00 GiB (4 ranks on one GPU, launch.profile.gpu_mem_gb=80)",
    )


def test_precision_is_what_the_trainer_uses() -> None:
    demo = load_sweep(TINY_DEMO, ["train.precision=bf16"])
    assert training_precision(demo, demo.launch.resources) == "fp32"  # on CPU the trainer trains in fp32
    paper = load_sweep(PAPER, ["train.precision=auto"])
    assert training_precision(paper, paper.launch.resources) == "bf16"


@pytest.mark.parametrize("sweep", sorted(p.name for p in (REPO / "sweeps").glob("*.yaml")))
def test_every_shipped_sweep_passes_the_check(sweep: str) -> None:
    spec = load_sweep(REPO / "sweeps" / sweep)
    fits = size_fits(spec, make_plan(spec))
    assert fits and all(f.fits for f in fits)
    assert all(isinstance(f.memory, RankMemory) for f in fits)


def test_launch_refuses_before_anything_is_submitted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The demo's tiny sizes on 1 MiB of node memory: T-3.7M needs 49 MiB per rank in fp32.
    spec = load_sweep(TINY_DEMO, ["launch.resources.mem_gb=0.001"])
    with pytest.raises(SpecError) as err:
        launch(spec, tmp_path, make_plan(spec), executor="local", entry="florenz_doubles:sleep_run")
    assert err.value.field_path == "launch.resources / train.zero_stage"
    assert "more memory per task (launch.resources.mem_gb)" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # no ledger, no run directories, no job folder
    demo = str(TINY_DEMO)
    assert cli_main(["launch", demo, "--dry-run", "-o", "launch.resources.mem_gb=0.001"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "launch.resources / train.zero_stage: T-0.5M needs" in captured.err
