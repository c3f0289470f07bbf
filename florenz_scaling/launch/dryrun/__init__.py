"""``launch --dry-run``: every submission a launch would make, and every size built on the meta device
(``meta``: its parameter count, and its per-rank memory checked against the resources).

What is printed is ``submit.submissions`` itself, the list ``launch`` submits: per submission its executor
parameters (exactly as handed to submitit, timeouts included), the sbatch script submitit renders from them
for SLURM, and its runs. Nothing else computes job parameters, so the dry run cannot drift from the launch.

The text is deterministic (no timestamps, no machine paths: ``$OUT`` stands for the sweep directory,
``<launch>`` for the launch's folder stamp, ``python`` for the interpreter) so it can be checked against a
recorded file, as submitit checks its sbatch strings (``tests/test_dryrun.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

from florenz_scaling.launch.dependencies import dependency_parameters
from florenz_scaling.launch.dryrun.checkpoints import check_checkpoints
from florenz_scaling.launch.dryrun.meta import check_memory, memory_lines, meta_models
from florenz_scaling.launch.jobs import DEFAULT_ENTRY
from florenz_scaling.launch.submit import Submission, submissions
from florenz_scaling.plan import PlannedRun
from florenz_scaling.spec import SweepSpec

OUT = "$OUT"
STAMP = "<launch>"
# submitit makes the folder absolute (against the working directory); an absolute stand-in avoids that.
_ABS_OUT = "/__OUT__"


def sbatch_text(sub: Submission) -> str:
    """The sbatch script submitit would submit for this (SLURM) submission's array."""
    from unittest import mock

    import submitit
    from submitit.slurm.slurm import SlurmExecutor, _make_sbatch_string

    # The executor converts generic keys (mem_gb, timeout_min, ...) to sbatch ones; its folder is not used.
    # It refuses to exist without `srun` on PATH, which a dry run (say, on a laptop) must not need.
    with mock.patch.object(SlurmExecutor, "affinity", classmethod(lambda cls: 2)):
        ex = submitit.AutoExecutor(folder="/nonexistent-dry-run", cluster="slurm")
    params = sub.parameters
    if sub.after:  # the job ids exist only once the start runs are submitted; name them instead
        extra = dependency_parameters([f"<job of {rid}>" for rid in sub.after])
        params = {**params, "slurm_additional_parameters": {**params["slurm_additional_parameters"], **extra}}
    ex.update_parameters(**params)
    sbatch = dict(ex._executor.parameters)  # the converted SLURM parameters, exactly as submission uses them
    folder = str(sub.folder)
    command = f"python -u -m submitit.core._submit {folder}"
    abs_folder = folder.replace(OUT, _ABS_OUT)
    # submitit submits a batch of one as a plain job, without --array.
    count = len(sub.runs) if len(sub.runs) > 1 else None
    text = _make_sbatch_string(command=command, folder=abs_folder, map_count=count, **sbatch)
    return text.replace(_ABS_OUT, OUT)


def _si(x: float) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.4g}{unit}"
    return f"{x:g}"


def _sizes(sub: Submission) -> str:
    return ", ".join(sorted({r.run.size for r in sub.runs}))


def _run_line(j: int, r: PlannedRun, call: str) -> str:
    # A WSD trunk segment or branch: the checkpoint it starts from (its samples added, not S, are its cost).
    start = (
        f" {r.role} from {r.run.start_from}@{r.run.start_step}"
        if r.run.start_from
        else (f" {r.role}" if r.role != "run" else "")
    )
    return (
        f"  [{j}] {r.run_id} {r.run.size} steps={r.run.steps} S={_si(r.seen_samples)} "
        f"C={r.compute_gmacs:.4g} GMACs{start} -> {call}"
    )


def _after(sub: Submission) -> list[str]:
    if not sub.after:
        return []
    return [f"after: {', '.join(sub.after)} (SLURM: afterok on their jobs, cancelled if one fails)"]


def _array(i: int, sub: Submission) -> list[str]:
    """A SLURM or debug job array: one ``TrainJob`` per run."""
    lines = ["", f"== array {i}: {len(sub.runs)} runs of {_sizes(sub)}"]
    lines.append("executor parameters: " + json.dumps(sub.parameters, sort_keys=True))
    lines += _after(sub)
    if sub.executor == "slurm":
        lines += ["sbatch script:", *("  " + ln for ln in sbatch_text(sub).splitlines())]
    lines.append("runs (array index, run id, size, steps, seen samples, compute):")
    pairs = enumerate(zip(sub.runs, sub.run_dirs, strict=True))
    lines += [_run_line(j, r, f"TrainJob({sub.entry})({d})") for j, (r, d) in pairs]
    return lines


def _slot(i: int, sub: Submission) -> list[str]:
    """A local slot: one ``SlotJob`` running its runs in turn, so its timeout is their sum."""
    n, per_run = len(sub.runs), sub.resources.timeout_min
    lines = [
        "",
        f"== slot {i} (resource group {sub.group}): {n} runs of {_sizes(sub)}, one after another",
        "executor parameters: " + json.dumps(sub.parameters, sort_keys=True),
        f"timeout: {sub.timeout_min} min = {n} runs x {per_run} min (launch.resources.timeout_min per run)",
        f"job: SlotJob({sub.entry}) over these run directories, each run in a fresh process"
        + (" (a WSD run after the run it starts from):" if any(r.run.start_from for r in sub.runs) else ":"),
        "runs (order in the slot, run id, size, steps, seen samples, compute):",
    ]
    lines += [_run_line(j, r, str(d)) for j, (r, d) in enumerate(zip(sub.runs, sub.run_dirs, strict=True))]
    return lines


def format_dry_run(
    spec: SweepSpec, plan: list[PlannedRun], executor: str | None = None, entry: str = DEFAULT_ENTRY
) -> str:
    """Everything a launch of ``plan`` would submit, and each size's parameter count built on meta.

    ``executor`` overrides ``spec.launch.executor`` (``auto`` resolves as ``launch`` resolves it).
    """
    # A plan that launch would refuse is refused here too; directories not on this machine are listed.
    checkpoints = check_checkpoints(spec, plan, absent_ok=True)
    fits = check_memory(spec, plan)
    subs = submissions(spec, plan, Path(OUT), executor or spec.launch.executor, entry, stamp=STAMP)
    kind = subs[0].executor if subs else executor or spec.launch.executor
    if kind == "local":
        unit = "local slot" if len(subs) == 1 else "local slots"
    else:
        unit = "array" if len(subs) == 1 else "arrays"
    lines = [
        f"dry run of sweep {spec.name}: {len(plan)} runs in {len(subs)} {unit} on executor {kind}; "
        "nothing is submitted",
    ]
    for i, sub in enumerate(subs):
        lines += _slot(i, sub) if sub.one_job else _array(i, sub)
    lines += ["", "models on the meta device (P, P_t counted on the built module; analytic in brackets):"]
    params_of = {r.run.size: r.params for r in plan}
    lines += meta_models(sorted(params_of, key=lambda s: (params_of[s], s)))
    lines += ["", *memory_lines(fits)]
    if checkpoints and any(spec.pretrained.get(r.run.size) for r in plan):
        lines += [
            "",
            "pretrained checkpoints (what loads, what is ignored, what starts at init):",
            *checkpoints,
        ]
    return "\n".join(lines)
