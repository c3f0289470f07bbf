"""Every size built on the meta device (no memory, no weights): its parameter counts checked against the
registry, and what one rank holds under the sweep's ZeRO stage checked against what its resources give.

``check_memory`` is the check ``launch`` runs before anything is submitted and ``--dry-run`` before it
prints; ``memory_lines`` is the table the dry run prints. The limit per rank is one GPU's memory
(``launch.profile.gpu_mem_gb``, shared when tasks outnumber GPUs) on GPU nodes, otherwise the node's memory
split over its tasks (``mem_gb / tasks_per_node``). A GPU's memory is not in the spec unless the profile
says it, and then nothing is refused, but the dry run says it was not checked.

torch is imported only inside these functions (``model.memory``), so ``launch`` still loads without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from florenz_scaling.plan import PlannedRun
from florenz_scaling.spec import Resources, SpecError, SweepSpec

if TYPE_CHECKING:
    from florenz_scaling.model.memory import RankMemory

GIB = 2**30  # SLURM reads --mem=NGB as N × 2^30 bytes; GPU memory is quoted the same way


@dataclass(frozen=True)
class SizeFit:
    """One size's per-rank memory and the limit its resources give (``None``: not known, not checked)."""

    size: str
    where: str  # the resources' field path: launch.resources or launch.per_size.<size>
    memory: RankMemory
    limit: float | None  # bytes per rank
    limit_text: str

    @property
    def fits(self) -> bool:
        return self.limit is None or self.memory.peak <= self.limit


def training_precision(spec: SweepSpec, res: Resources) -> str:
    """What the run trains in (``train.engine.resolve_precision``): fp32 on CPU, ``auto`` = bf16 on GPU."""
    if res.gpus_per_node == 0:
        return "fp32"
    return "bf16" if spec.train.precision == "auto" else spec.train.precision


def rank_limit(spec: SweepSpec, res: Resources) -> tuple[float | None, str]:
    """Bytes one rank may hold on these resources, and how that was worked out."""
    if res.gpus_per_node > 0:
        gpu = spec.launch.profile.gpu_mem_gb
        if gpu is None:
            return None, "not checked: launch.profile.gpu_mem_gb is not set"
        share = min(1.0, res.gpus_per_node / res.tasks_per_node)  # more tasks than GPUs share them
        per = "GPU" if share == 1 else f"{res.tasks_per_node // res.gpus_per_node} ranks on one GPU"
        return gpu * share * GIB, f"{_gib(gpu * share * GIB)} ({per}, launch.profile.gpu_mem_gb={gpu:g})"
    limit = res.mem_gb / res.tasks_per_node * GIB
    tasks = f"{res.tasks_per_node} task" + ("s" if res.tasks_per_node > 1 else "")
    return limit, f"{_gib(limit)} (mem_gb={res.mem_gb:g} / {tasks})"


def size_fits(spec: SweepSpec, plan: list[PlannedRun]) -> list[SizeFit]:
    """Each size of ``plan`` (smallest first): its per-rank memory and its limit."""
    from florenz_scaling.model.memory import size_memory  # torch only here

    params_of = {r.run.size: r.params for r in plan}
    fits = []
    for size in sorted(params_of, key=lambda s: (params_of[s], s)):
        res = spec.launch.resources_for(size)
        where = spec.launch.resources_field(size)
        mem = size_memory(size, spec.train.zero_stage, spec.train.world_size, training_precision(spec, res))
        limit, text = rank_limit(spec, res)
        fits.append(SizeFit(size, where, mem, limit, text))
    return fits


def check_memory(spec: SweepSpec, plan: list[PlannedRun]) -> list[SizeFit]:
    """``SpecError`` for the first size whose rank cannot hold its parameters, gradients and optimizer state;
    else every size's fit (for the dry run's table)."""
    fits = size_fits(spec, plan)
    for f in fits:
        if not f.fits:
            raise _too_big(spec, f)
    return fits


def _too_big(spec: SweepSpec, f: SizeFit) -> SpecError:
    from florenz_scaling.model.memory import size_memory

    m, limit = f.memory, f.limit or 0.0
    what = (
        f"{f.size} needs {_gib(m.peak)} per rank (parameters {_gib(m.params)} + gradients {_gib(m.grads)} "
        f"+ optimizer {_gib(m.optimizer)}"
        + (f"; {_gib(m.build_peak)} at the peak of the partitioned build" if m.build_peak else "")
        + f") at ZeRO-{m.zero_stage} over {m.world} rank{'s' if m.world > 1 else ''} in {m.precision}, "
        f"but a rank has {f.limit_text}"
    )
    fixes = [
        f"raise train.zero_stage to {stage} ({_gib(peak)} per rank)"
        for stage in range(m.zero_stage + 1, 4)
        if (peak := size_memory(f.size, stage, m.world, m.precision).peak) <= limit
    ][:1]
    # At ZeRO-0 every rank holds everything: more ranks help only with a higher stage.
    stage = m.zero_stage or 3
    res = spec.launch.resources_for(f.size)
    tasks = res.tasks_per_node
    nodes = next(
        (
            n
            for n in (2**i for i in range(11))
            if size_memory(f.size, stage, n * tasks, m.precision).peak <= limit
        ),
        None,
    )
    if nodes is not None and nodes * tasks > m.world:
        fixes.append(
            ("train.zero_stage 3 over " if m.zero_stage == 0 else "more ranks: ")
            + f"{nodes * tasks} ranks (nodes × tasks_per_node in {f.where}, and train.world_size)"
        )
    if res.gpus_per_node > 0:
        fixes.append("GPUs with more memory (launch.profile.gpu_mem_gb)")
    else:
        fixes.append(f"more memory per task ({f.where}.mem_gb)")
    field = f"{f.where} / train.zero_stage" if m.zero_stage < 3 else f.where
    return SpecError(field, what, "; or ".join(fixes) + " (activations come on top of this)")


def memory_lines(fits: list[SizeFit]) -> list[str]:
    """The dry run's per-rank memory table, and each size's per-rank total at every ZeRO stage."""
    from florenz_scaling.model.memory import size_memory

    lines = [
        "per-rank memory (parameters, gradients, optimizer state; activations not counted; GiB = 2^30 B):",
        f"  {'size':8s} {'ZeRO':>4s} {'ranks':>5s} {'dtype':5s} {'params':>10s} {'grads':>10s} "
        f"{'optimizer':>10s} {'total':>10s} {'build peak':>10s}  limit per rank",
    ]
    for f in fits:
        m = f.memory
        peak = _gib(m.build_peak) if m.build_peak is not None else "-"
        verdict = "" if f.limit is None else ("  fits" if f.fits else "  TOO BIG")
        lines.append(
            f"  {f.size:8s} {m.zero_stage:>4d} {m.world:>5d} {m.precision:5s} {_gib(m.params):>10s} "
            f"{_gib(m.grads):>10s} {_gib(m.optimizer):>10s} {_gib(m.total):>10s} {peak:>10s}  "
            f"{f.limit_text}{verdict}"
        )
    lines.append("  per-rank total (build peak at ZeRO-3) at each stage, same ranks and dtype:")
    for f in fits:
        m = f.memory
        cells = [
            f"ZeRO-{stage} {_gib(size_memory(f.size, stage, m.world, m.precision).peak)}"
            for stage in range(4)
        ]
        lines.append(f"  {f.size:8s} " + " | ".join(cells))
    return lines


def meta_models(sizes: list[str]) -> list[str]:
    """Each size built on the meta device, its counts checked against the registry."""
    from florenz_scaling.model.florenz import count_module_params  # torch only here
    from florenz_scaling.model.memory import meta_model
    from florenz_scaling.spec.sizes import get_size

    lines = []
    for name in sizes:
        total, trainable = count_module_params(meta_model(name))
        size = get_size(name)
        ok = "ok" if (total, trainable) == (size.params, size.trainable_params) else "MISMATCH"
        lines.append(
            f"  {name:8s} P={total:,} P_t={trainable:,} [{size.params:,} / {size.trainable_params:,}] {ok}"
        )
    return lines


def _gib(n: float | None) -> str:
    n = n or 0.0
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / 2**20:.1f} MiB"
