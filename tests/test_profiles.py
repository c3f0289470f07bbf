"""Cluster resource profiles (``launch.profile``): the sbatch text each way of asking for GPUs and memory
renders, recorded as submitit records its sbatch strings, and the profile errors that name the field.

Recorded files live in ``tests/data/profiles/``. After an intended change, regenerate and review the diff:

    FLORENZ_RECORD=1 .venv/bin/python -m pytest tests/test_profiles.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from florenz_scaling.launch.dryrun import OUT, STAMP, sbatch_text
from florenz_scaling.launch.submit import submissions
from florenz_scaling.plan import make_plan
from florenz_scaling.spec import SpecError, load_sweep

REPO = Path(__file__).resolve().parents[1]
RECORDED = REPO / "tests" / "data" / "profiles"
RECORD = os.environ.get("FLORENZ_RECORD") == "1"
# The paper's 8-GPU nodes, two of them: 16 ranks, one run of F-0.4B (a batch of one: no --array).
TWO_NODES = [
    "sizes=[F-0.4B]",
    "grid.steps=[500]",
    "extra_runs=[]",
    "launch.resources.nodes=2",
    "train.world_size=16",
]
PROFILES: dict[str, list[str]] = {
    "gpus-per-node": [],  # the default: submitit's own --gpus-per-node and --mem
    "gpus-per-node-typed": ["launch.profile.gpu_type=a100"],
    "gres": ["launch.profile.gpus=gres", "launch.profile.gpu_type=a100"],
    "gpus": ["launch.profile.gpus=gpus"],
    "gpus-per-task": ["launch.profile.gpus=gpus-per-task"],
    "gres-mem-per-gpu-srun-args": [
        "launch.profile.gpus=gres",
        "launch.profile.memory=per-gpu",
        "launch.profile.mem_per_gpu_gb=60",
        "launch.profile.srun_args=[--gpu-bind=none, --cpu-bind=cores]",
    ],
}


def _rendered(over: list[str]) -> tuple[dict, str]:
    spec = load_sweep(REPO / "sweeps" / "florenz_paper.yaml", [*TWO_NODES, *over])
    (sub,) = submissions(spec, make_plan(spec), Path(OUT), "slurm", stamp=STAMP)
    return sub.parameters, sbatch_text(sub)


def check_recorded(text: str, path: Path) -> None:
    if RECORD:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no recorded output {path}; regenerate with FLORENZ_RECORD=1 (module doc)"
    assert text == path.read_text(), f"sbatch text differs from {path}; if intended, FLORENZ_RECORD=1"


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profile_sbatch_matches_recorded(name: str) -> None:
    params, text = _rendered(PROFILES[name])
    check_recorded(
        f"executor parameters: {json.dumps(params, sort_keys=True)}\n{text}", RECORDED / f"{name}.sbatch"
    )


def _directives(text: str) -> list[str]:
    return [ln.removeprefix("#SBATCH ") for ln in text.splitlines() if ln.startswith("#SBATCH ")]


def _srun(text: str) -> str:
    return next(ln for ln in text.splitlines() if ln.startswith("srun "))


@pytest.mark.parametrize(
    ("name", "flag"),
    [
        ("gpus-per-node", "--gpus-per-node=8"),
        ("gpus-per-node-typed", "--gpus-per-node=a100:8"),
        ("gres", "--gres=gpu:a100:8"),
        ("gpus", "--gpus=16"),  # the job's total over both nodes
        ("gpus-per-task", "--gpus-per-task=1"),
    ],
)
def test_each_profile_asks_for_gpus_exactly_one_way(name: str, flag: str) -> None:
    _, text = _rendered(PROFILES[name])
    gpu_flags = [d for d in _directives(text) if d.startswith(("--gres", "--gpus"))]
    assert gpu_flags == [flag]
    assert "--mem=480GB" in _directives(text) and "--nodes=2" in _directives(text)
    assert "gpu" not in _srun(text)  # the step inherits the job's GPUs; srun_args is for sites that differ


def test_per_gpu_memory_has_no_mem() -> None:
    params, text = _rendered(PROFILES["gres-mem-per-gpu-srun-args"])
    assert "mem_gb" not in params
    mem = [d for d in _directives(text) if d.startswith("--mem")]
    assert mem == ["--mem-per-gpu=60GB"]  # never with --mem: sbatch refuses both (submitit #1769)
    assert _srun(text).startswith("srun --unbuffered --output ")
    assert " --gpu-bind=none --cpu-bind=cores python -u -m submitit.core._submit " in _srun(text)


def test_fractional_memory_per_gpu_is_written_in_mb() -> None:
    _, text = _rendered(["launch.profile.memory=per-gpu", "launch.profile.mem_per_gpu_gb=7.5"])
    assert "--mem-per-gpu=7680MB" in _directives(text)


def test_local_executor_ignores_the_profile() -> None:
    # A profile is how SLURM is asked; local slots see the generic keys only (gpus_per_node, mem_gb).
    over = ["launch.profile.gpus=gres", "launch.profile.memory=per-gpu", "launch.profile.mem_per_gpu_gb=60"]
    spec = load_sweep(REPO / "sweeps" / "florenz_paper.yaml", ["sizes=[F-0.4B]", "grid.steps=[500]", *over])
    plain = load_sweep(REPO / "sweeps" / "florenz_paper.yaml", ["sizes=[F-0.4B]", "grid.steps=[500]"])
    subs = submissions(spec, make_plan(spec), Path(OUT), "local", stamp=STAMP)
    assert [s.parameters for s in subs] == [
        s.parameters for s in submissions(plain, make_plan(plain), Path(OUT), "local", stamp=STAMP)
    ]
    assert subs[0].parameters["gpus_per_node"] == 8 and subs[0].parameters["mem_gb"] == 480.0


@pytest.mark.parametrize(
    ("over", "field", "words"),
    [
        (["launch.profile.gpus=gpus-per-node3"], "launch.profile.gpus", "use one of gpus-per-node, gres"),
        (
            ["launch.profile.gpus=gpus-per-task", "launch.resources.tasks_per_node=3"],
            "launch.resources.gpus_per_node",
            "not divisible by tasks_per_node = 3",
        ),
        (
            ["launch.profile.gpus=gpus-per-task", "launch.per_size={F-0.4B: {gpus_per_node: 4}}"],
            "launch.per_size.F-0.4B.gpus_per_node",
            "gpus_per_node = 4 is not divisible by tasks_per_node = 8",
        ),
        (
            [
                "launch.profile.memory=per-gpu",
                "launch.profile.mem_per_gpu_gb=60",
                "launch.resources.gpus_per_node=0",
            ],
            "launch.resources.gpus_per_node",
            "memory is per-gpu but the job asks for no GPUs",
        ),
        (["launch.profile.memory=per-gpu"], "launch.profile.mem_per_gpu_gb", "no mem_per_gpu_gb is given"),
        (["launch.profile.gpu_type=a100:8"], "launch.profile.gpu_type", "is not a GPU type name"),
        (["launch.profile.gpu_mem_gb=0"], "launch.profile.gpu_mem_gb", "must be positive"),
        (
            ['launch.profile.srun_args=["--x\\nrm -rf /"]'],
            "launch.profile.srun_args[0]",
            "control characters",
        ),
        (["launch.profile.gpu=gres"], "launch.profile.gpu", "unknown"),
    ],
)
def test_profile_errors_name_the_field(over: list[str], field: str, words: str) -> None:
    with pytest.raises(SpecError) as err:
        load_sweep(REPO / "sweeps" / "florenz_paper.yaml", ["sizes=[F-0.4B]", *over])
    assert err.value.field_path == field and words in str(err.value), str(err.value)
