"""``launch --dry-run``: the job parameters of every array and run, and every size built on the meta device.

The text is deterministic (no timestamps, no machine paths: ``$OUT`` stands for the sweep directory,
``python`` for the interpreter) so it can be checked against a recorded file, as submitit checks its
sbatch strings.
"""

from __future__ import annotations

import json
from typing import Any

from florenz_scaling.launch.jobs import DEFAULT_ENTRY
from florenz_scaling.launch.submit import executor_parameters, group_by_resources, resolve_executor
from florenz_scaling.plan import PlannedRun
from florenz_scaling.spec import SweepSpec

OUT = "$OUT"
JOB_FOLDER = f"{OUT}/jobs/<launch>/%j"
# submitit makes the folder absolute (against the working directory); an absolute stand-in avoids that.
_ABS_OUT = "/__OUT__"


def sbatch_text(spec: SweepSpec, params: dict[str, Any], count: int) -> str:
    """The sbatch script submitit would submit for an array of ``count`` runs with these parameters."""
    import submitit
    from submitit.slurm.slurm import _make_sbatch_string

    # The executor converts generic keys (mem_gb, timeout_min, ...) to sbatch ones; its folder is not used.
    ex = submitit.AutoExecutor(folder="/nonexistent-dry-run", cluster="slurm")
    ex.update_parameters(**params)
    sbatch = dict(ex._executor.parameters)  # the converted SLURM parameters, exactly as submission uses them
    command = f"python -u -m submitit.core._submit {JOB_FOLDER}"
    folder = JOB_FOLDER.replace(OUT, _ABS_OUT)
    text = _make_sbatch_string(command=command, folder=folder, map_count=count, **sbatch)
    return text.replace(_ABS_OUT, OUT)


def _si(x: float) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.4g}{unit}"
    return f"{x:g}"


def format_dry_run(spec: SweepSpec, plan: list[PlannedRun], executor: str | None = None) -> str:
    """Everything a launch would submit, and the parameter count of each size's real model on meta."""
    kind = executor or spec.launch.executor
    if kind == "auto":
        kind = resolve_executor(kind)
    groups = group_by_resources(spec, plan)
    lines = [
        f"dry run of sweep {spec.name}: {len(plan)} runs in {len(groups)} "
        f"{'array' if len(groups) == 1 else 'arrays'} on executor {kind}; nothing is submitted",
    ]
    for i, (res, runs) in enumerate(groups):
        timeout = res.timeout_min * (1 if kind != "local" else len(runs))
        params = executor_parameters(spec, res, kind, timeout)
        lines += ["", f"== array {i}: {len(runs)} runs of {', '.join(sorted({r.run.size for r in runs}))}"]
        lines.append("executor parameters: " + json.dumps(params, sort_keys=True))
        if kind == "slurm":
            lines += [
                "sbatch script:",
                *("  " + ln for ln in sbatch_text(spec, params, len(runs)).splitlines()),
            ]
        lines.append("runs (array index, run id, size, steps, seen samples, compute):")
        for j, r in enumerate(runs):
            lines.append(
                f"  [{j}] {r.run_id} {r.run.size} steps={r.run.steps} S={_si(r.seen_samples)} "
                f"C={r.compute_gmacs:.4g} GMACs -> TrainJob({DEFAULT_ENTRY})({OUT}/runs/{r.run_id})"
            )
    lines += ["", "models on the meta device (P, P_t counted on the built module; analytic in brackets):"]
    params_of = {r.run.size: r.params for r in plan}
    lines += _meta_models(sorted(params_of, key=lambda s: (params_of[s], s)))
    return "\n".join(lines)


def _meta_models(sizes: list[str]) -> list[str]:
    from florenz_scaling.model.florenz import build_model, count_module_params  # torch only here
    from florenz_scaling.spec.sizes import get_size

    lines = []
    for name in sizes:
        total, trainable = count_module_params(build_model(name, device="meta"))
        size = get_size(name)
        ok = "ok" if (total, trainable) == (size.params, size.trainable_params) else "MISMATCH"
        lines.append(
            f"  {name:8s} P={total:,} P_t={trainable:,} [{size.params:,} / {size.trainable_params:,}] {ok}"
        )
    return lines
