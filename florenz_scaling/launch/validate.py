"""Every check that can fail before anything is submitted, so that a launch submits all or nothing.

``SpecError`` names the field to change (data paths, checkpoints, processes vs ``train.world_size``, whether
each rank's parameters, gradients and optimizer state fit its GPU or CPU memory); ``LaunchError`` is
something outside the spec (no SLURM controller, a missing entry-point module).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

from florenz_scaling.launch.scheduler import slurm_available
from florenz_scaling.plan import PlannedRun
from florenz_scaling.spec import SpecError, SweepSpec


class LaunchError(RuntimeError):
    """Something outside the spec prevents submission (no SLURM controller, a missing module, ...)."""


def first_shard(pattern: str) -> str:
    """The first path a shard pattern names: ``{0000..2174}`` -> ``0000``, ``{a,b}`` -> ``a``."""

    def first(m: re.Match[str]) -> str:
        body = m.group(1)
        return body.split("..")[0] if ".." in body else body.split(",")[0]

    return re.sub(r"\{([^{}]*)\}", first, pattern)


def validate_launch(spec: SweepSpec, plan: list[PlannedRun], executor: str, entry: str) -> None:
    """Every check that can fail before submission: ``SpecError`` (naming the field) or ``LaunchError``."""
    data = spec.data
    if data.kind == "webdataset" and data.path:
        shard = first_shard(data.path)
        if not Path(shard).exists():
            raise SpecError(
                "data.path",
                f"{data.path!r} names no readable shards ({shard} does not exist)",
                "point data.path at your local WebDataset .tar shards",
            )
    # Tokenizers against the sizes' vocabularies, every checkpoint's layout, config, keys and shapes against
    # its size (torch is loaded here, not on import).
    from florenz_scaling.launch.dryrun.checkpoints import check_checkpoints

    check_checkpoints(spec, plan)
    for size in sorted({r.run.size for r in plan}):
        res = spec.launch.resources_for(size)
        where = spec.launch.resources_field(size)
        procs = res.nodes * res.tasks_per_node
        if procs != spec.train.world_size:
            raise SpecError(
                f"{where}.tasks_per_node",
                f"nodes × tasks_per_node = {procs} processes but train.world_size is {spec.train.world_size}",
                "each process is one srun task: make nodes × tasks_per_node equal train.world_size",
            )
        if executor != "slurm" and res.nodes > 1:
            raise SpecError(
                f"{where}.nodes", f"the {executor} executor runs on one node", "use --executor slurm"
            )
    # Each rank's parameters, gradients and optimizer state must fit its GPU or its share of the node's
    # memory; the sizes are built on the meta device for it (torch is loaded here, not on import).
    from florenz_scaling.launch.dryrun.meta import check_memory

    check_memory(spec, plan)
    module = entry.partition(":")[0]
    if importlib.util.find_spec(module) is None:
        raise LaunchError(f"the run entry point {entry!r} cannot be imported: module {module} is missing")
    if executor == "slurm":
        if not slurm_available():
            raise LaunchError(
                "no SLURM controller answers `sinfo` (start one with scripts/slurm-local start)"
            )
        for part in sorted({spec.launch.resources_for(r.run.size).partition or "" for r in plan} - {""}):
            out = subprocess.run(["sinfo", "-h", "-p", part, "-o", "%P"], capture_output=True, text=True)
            if not out.stdout.strip():
                raise SpecError("launch.resources.partition", f"SLURM has no partition {part!r}")
