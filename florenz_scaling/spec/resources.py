"""Where and on what a run executes: SLURM resources and the launch section of a sweep.

Every string here may end up in an sbatch script, so control characters are refused at load.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from florenz_scaling.spec.load import check, from_dict

# Where runs execute; "auto" in a spec resolves to slurm when sbatch answers, else local.
EXECUTORS = ("local", "slurm", "debug")
# An sbatch long-option name (what submitit writes as `#SBATCH --<name>=<value>`).
SBATCH_OPTION = re.compile(r"[a-z][a-z0-9-]*")
# How a site asks SLURM for GPUs (``launch.profile.gpus``) and memory (``launch.profile.memory``).
GpuFlag = Literal["gpus-per-node", "gres", "gpus", "gpus-per-task"]
MemoryFlag = Literal["per-node", "per-gpu"]
GPU_FLAGS: tuple[str, ...] = get_args(GpuFlag)
MEMORY_FLAGS: tuple[str, ...] = get_args(MemoryFlag)
# A GPU type as it appears in gres and --gpus strings (gpu:a100:8, a100:16): no ':' or ',' of its own.
GPU_TYPE = re.compile(r"[A-Za-z0-9_.-]+")


def check_plain_text(value: str, field_path: str) -> None:
    """Refuse control characters (newlines, tabs, escapes): the value is written into scripts and files."""
    bad = sorted({repr(c) for c in value if ord(c) < 32 or ord(c) == 127})
    check(
        not bad,
        field_path,
        f"contains control characters {', '.join(bad)}",
        "remove newlines and other control characters from the value",
    )


@dataclass(frozen=True)
class Resources:
    """SLURM resources for one run; every field may be overridden per size."""

    nodes: int = 1
    gpus_per_node: int = 0
    tasks_per_node: int = 1
    cpus_per_task: int = 1
    mem_gb: float = 4.0
    timeout_min: int = 60
    partition: str | None = None
    account: str | None = None
    constraint: str | None = None
    additional: dict[str, str] = field(default_factory=dict)  # extra sbatch options, e.g. {qos: high}

    def validate(self, path: str) -> None:
        # These strings end up in an sbatch script: a newline there would run as a shell line on the node.
        for name in ("partition", "account", "constraint"):
            value = getattr(self, name)
            if value is not None:
                check_plain_text(value, f"{path}.{name}")
        for key, value in self.additional.items():
            check(
                SBATCH_OPTION.fullmatch(key) is not None,
                f"{path}.additional.{key}",
                "is not an sbatch option name",
                "use the long option's name without dashes, e.g. qos or mail-type (lower case, digits, '-')",
            )
            check_plain_text(str(value), f"{path}.additional.{key}")
        for name in ("nodes", "tasks_per_node", "cpus_per_task", "timeout_min"):
            check(getattr(self, name) > 0, f"{path}.{name}", "must be positive")
        check(self.gpus_per_node >= 0, f"{path}.gpus_per_node", "must be >= 0")
        check(self.mem_gb > 0, f"{path}.mem_gb", "must be positive")


@dataclass(frozen=True)
class Profile:
    """How this site's SLURM is asked for GPUs and memory (``launch.profile``); the default is submitit's
    own choice (``--gpus-per-node`` and ``--mem``).

    Sites differ: some reject ``--gres`` in favour of ``--gpus`` (submitit #1710), others know only
    ``--gres`` (``--gpus-per-node`` invalid, #1639), and ``--mem-per-gpu`` must come without ``--mem``
    (they are mutually exclusive, #1769). The srun step inside the job inherits the job's GPU request (srun
    gets all the job's gres by default and reads SLURM_GPUS* from the environment), so none of the four
    needs a GPU flag of its own on srun; a site whose steps still fail ("Invalid gres", #1726) adds one in
    ``srun_args``.
    """

    gpus: GpuFlag = "gpus-per-node"
    gpu_type: str | None = None  # e.g. a100: --gres=gpu:a100:8, --gpus=a100:16, --gpus-per-node=a100:8
    memory: MemoryFlag = "per-node"  # per-node: --mem=mem_gb; per-gpu: --mem-per-gpu
    mem_per_gpu_gb: float | None = None  # host memory per GPU with memory: per-gpu
    srun_args: tuple[str, ...] = ()  # extra arguments of the srun line that starts the tasks
    gpu_mem_gb: float | None = None  # memory of one GPU; --dry-run and launch check each rank fits in it

    def validate(self, path: str) -> None:
        if self.gpu_type is not None:
            check(
                GPU_TYPE.fullmatch(self.gpu_type) is not None,
                f"{path}.gpu_type",
                f"{self.gpu_type!r} is not a GPU type name",
                "use the type as the site's gres names it, e.g. a100 (letters, digits, '_', '.', '-')",
            )
        if self.memory == "per-gpu":
            check(
                self.mem_per_gpu_gb is not None,
                f"{path}.mem_per_gpu_gb",
                "memory: per-gpu asks --mem-per-gpu but no mem_per_gpu_gb is given",
                "set mem_per_gpu_gb (host memory per GPU) or use memory: per-node",
            )
        for name in ("mem_per_gpu_gb", "gpu_mem_gb"):
            value = getattr(self, name)
            check(value is None or value > 0, f"{path}.{name}", f"must be positive, got {value}")
        for i, arg in enumerate(self.srun_args):
            check_plain_text(arg, f"{path}.srun_args[{i}]")  # written into the sbatch script's srun line
            check(arg != "", f"{path}.srun_args[{i}]", "is empty", "remove it")

    def validate_resources(self, res: Resources, path: str, profile_path: str) -> None:
        """The profile's demands on one resource group (``path`` names it)."""
        if self.gpus == "gpus-per-task":
            check(
                res.gpus_per_node % res.tasks_per_node == 0,
                f"{path}.gpus_per_node",
                f"{profile_path}.gpus is gpus-per-task but gpus_per_node = {res.gpus_per_node} is not "
                f"divisible by tasks_per_node = {res.tasks_per_node}",
                "give every task the same number of GPUs: make gpus_per_node a multiple of tasks_per_node",
            )
        if self.memory == "per-gpu":
            check(
                res.gpus_per_node > 0,
                f"{path}.gpus_per_node",
                f"{profile_path}.memory is per-gpu but the job asks for no GPUs",
                f"ask for GPUs, or set {profile_path}.memory: per-node (mem_gb)",
            )


@dataclass(frozen=True)
class LaunchSpec:
    executor: str = "auto"  # "auto" or one of EXECUTORS
    array_parallelism: int = 4
    resources: Resources = field(default_factory=Resources)
    per_size: dict[str, dict[str, Any]] = field(default_factory=dict)  # size -> Resources field overrides
    max_requeues: int = 3
    profile: Profile = field(default_factory=Profile)  # how this site asks for GPUs and memory

    def resources_for(self, size: str) -> Resources:
        return dataclasses.replace(self.resources, **self.per_size.get(size, {}))

    def resources_field(self, size: str) -> str:
        """Where ``size``'s resources are set in the spec: what an error about them names."""
        return f"launch.per_size.{size}" if size in self.per_size else "launch.resources"

    def validate(self, path: str) -> None:
        check(
            self.executor in ("auto", *EXECUTORS),
            f"{path}.executor",
            f"{self.executor!r} is not allowed",
            f"use one of auto, {', '.join(EXECUTORS)}",
        )
        check(self.array_parallelism > 0, f"{path}.array_parallelism", "must be positive")
        self.resources.validate(f"{path}.resources")
        self.profile.validate(f"{path}.profile")
        self.profile.validate_resources(self.resources, f"{path}.resources", f"{path}.profile")
        valid = {f.name for f in dataclasses.fields(Resources)}
        for size, over in self.per_size.items():
            for key in over:
                check(
                    key in valid,
                    f"{path}.per_size.{size}.{key}",
                    "unknown resource field",
                    f"use one of {', '.join(sorted(valid))}",
                )
            res = from_dict(
                Resources, {**dataclasses.asdict(self.resources), **over}, f"{path}.per_size.{size}"
            )
            res.validate(f"{path}.per_size.{size}")
            self.profile.validate_resources(res, f"{path}.per_size.{size}", f"{path}.profile")
