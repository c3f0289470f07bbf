"""Where and on what a run executes: SLURM resources and the launch section of a sweep.

Every string here may end up in an sbatch script, so control characters are refused at load.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from florenz_scaling.spec.load import SpecError, check, from_dict

# Where runs execute; "auto" in a spec resolves to slurm when sbatch answers, else local.
EXECUTORS = ("local", "slurm", "debug")
# An sbatch long-option name (what submitit writes as `#SBATCH --<name>=<value>`).
SBATCH_OPTION = re.compile(r"[a-z][a-z0-9-]*")


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
class LaunchSpec:
    executor: str = "auto"  # "auto" or one of EXECUTORS
    array_parallelism: int = 4
    resources: Resources = field(default_factory=Resources)
    per_size: dict[str, dict[str, Any]] = field(default_factory=dict)  # size -> Resources field overrides
    max_requeues: int = 3

    def resources_for(self, size: str) -> Resources:
        return dataclasses.replace(self.resources, **self.per_size.get(size, {}))

    def validate(self, path: str) -> None:
        check(
            self.executor in ("auto", *EXECUTORS),
            f"{path}.executor",
            f"{self.executor!r} is not allowed",
            f"use one of auto, {', '.join(EXECUTORS)}",
        )
        check(self.array_parallelism > 0, f"{path}.array_parallelism", "must be positive")
        self.resources.validate(f"{path}.resources")
        valid = {f.name for f in dataclasses.fields(Resources)}
        for size, over in self.per_size.items():
            for key in over:
                check(
                    key in valid,
                    f"{path}.per_size.{size}.{key}",
                    "unknown resource field",
                    f"use one of {', '.join(sorted(valid))}",
                )
            try:
                res = from_dict(
                    Resources, {**dataclasses.asdict(self.resources), **over}, f"{path}.per_size.{size}"
                )
            except SpecError:
                raise
            res.validate(f"{path}.per_size.{size}")
