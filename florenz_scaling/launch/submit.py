"""Launch a sweep through submitit: ``slurm`` job arrays, ``local`` processes or the in-process ``debug``
executor.

- One job array per sweep on SLURM. Runs whose resources differ (``launch.per_size``) cannot share an array
  (an array has one set of sbatch options), so the runs are grouped by identical resources, one array per
  group.
- The ``local`` executor has no queue: it starts ``array_parallelism`` slots per resource group, each working
  through its share of the runs in turn.
- Idempotent: a run with ``DONE`` is skipped, and so is a run whose latest job is queued or running.
  Everything that can fail before submission is checked first; on any error nothing is submitted.
- ``runs/<id>/run.yaml`` is written once: the run id is a hash of the run's spec, so an existing file already
  describes the same run (and a finished run's directory is never touched).
- submitit's folder is fresh per launch (``jobs/<stamp>/%j``): SLURM job ids restart after a purge, and a
  reused folder would hand back an older job's result.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from florenz_scaling.files import SweepDir
from florenz_scaling.launch.jobs import DEFAULT_ENTRY
from florenz_scaling.launch.ledger import Event, Ledger
from florenz_scaling.launch.scheduler import slurm_available
from florenz_scaling.plan import PlannedRun
from florenz_scaling.spec import EXECUTORS, Resources, SpecError, SweepSpec, dump_yaml, load_run


class LaunchError(RuntimeError):
    """Something outside the spec prevents submission (no SLURM controller, a missing module, ...)."""


@dataclass
class LaunchResult:
    """What one ``launch`` did: submitted ``(run_id, job_id)`` pairs and why the other runs were skipped."""

    executor: str
    folder: Path | None
    submitted: list[tuple[str, str]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    jobs: list[Any] = field(default_factory=list)  # submitit Job objects (only live in this process)


def resolve_executor(kind: str) -> str:
    """``auto`` -> ``slurm`` when a controller answers ``sinfo``, else ``local``."""
    if kind == "auto":
        return "slurm" if slurm_available() else "local"
    if kind not in EXECUTORS:
        raise SpecError("launch.executor", f"unknown executor {kind!r}", f"use auto, {', '.join(EXECUTORS)}")
    return kind


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
    if data.tokenizer and not Path(data.tokenizer).is_dir():
        raise SpecError(
            "data.tokenizer", f"{data.tokenizer!r} is not a directory", "give a local tokenizer dir"
        )
    for size in sorted({r.run.size for r in plan}):
        pre = spec.pretrained.get(size)
        for kind in ("florence", "gemma"):
            path = getattr(pre, kind) if pre is not None else None
            if path is not None and not any(
                f.name.endswith(".safetensors") or f.name.startswith("pytorch_model")
                for f in (Path(path).iterdir() if Path(path).is_dir() else [])
            ):
                raise SpecError(
                    f"pretrained.{size}.{kind}",
                    f"{path!r} is not a directory with *.safetensors or pytorch_model*.bin weights",
                    "point it at a local checkpoint saved with save_pretrained (nothing is downloaded)",
                )
        res = spec.launch.resources_for(size)
        where = f"launch.per_size.{size}" if size in spec.launch.per_size else "launch.resources"
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


def executor_parameters(spec: SweepSpec, res: Resources, executor: str, timeout_min: int) -> dict[str, Any]:
    """``AutoExecutor.update_parameters`` keywords for one resource group."""
    params: dict[str, Any] = {
        "name": f"fs-{spec.name}",
        "timeout_min": timeout_min,
        "tasks_per_node": res.tasks_per_node,
        "cpus_per_task": res.cpus_per_task,
        "mem_gb": res.mem_gb,
        "stderr_to_stdout": True,  # one log file per job: the path the ledger and status show
    }
    if res.gpus_per_node:
        params["gpus_per_node"] = res.gpus_per_node
    if executor == "slurm":
        params["nodes"] = res.nodes
        params["slurm_array_parallelism"] = spec.launch.array_parallelism
        for key in ("partition", "account", "constraint"):
            if getattr(res, key):
                params[f"slurm_{key}"] = getattr(res, key)
        # --requeue: a preempted or requeued job comes back (the callable is checkpointable). --hold: submitit
        # creates each array task's folder (its log file's directory) and moves its pickle there only after
        # sbatch returns; a task started before that fails at once, so the array is released afterwards.
        params["slurm_additional_parameters"] = {"requeue": True, "hold": True, **res.additional}
    return params


def group_by_resources(spec: SweepSpec, runs: list[PlannedRun]) -> list[tuple[Resources, list[PlannedRun]]]:
    """Runs grouped by identical resources (one job array each), in plan order."""
    groups: dict[str, tuple[Resources, list[PlannedRun]]] = {}
    for r in runs:
        res = spec.launch.resources_for(r.run.size)
        key = json.dumps(dataclasses.asdict(res), sort_keys=True)
        groups.setdefault(key, (res, []))[1].append(r)
    return list(groups.values())


def prepare_runs(spec: SweepSpec, plan: list[PlannedRun], out: str | Path) -> None:
    """Write ``runs/<id>/run.yaml`` for every run that lacks one; ``DONE`` runs are never touched."""
    sd = SweepDir(out)
    for r in plan:
        rd = sd.run(r.run_id)
        if rd.done.exists() or rd.run_yaml.exists():
            continue
        rd.root.mkdir(parents=True, exist_ok=True)
        dump_yaml(r.run, rd.run_yaml)


def select_runs(
    plan: list[PlannedRun], out: str | Path, only: tuple[str, ...] = (), retry_failed: bool = False
) -> tuple[list[PlannedRun], dict[str, str]]:
    """The runs to submit now, and the reason each other run is skipped."""
    from florenz_scaling.launch.status import sweep_status

    known = {r.run_id for r in plan}
    for rid in only:
        if rid not in known:
            raise SpecError(
                "--only", f"no run {rid!r} in this sweep", "pick a run id from `status` or `plan`"
            )
    states = {s.run_id: s.state for s in sweep_status(out)}
    chosen, skipped = [], {}
    for r in plan:
        state = states.get(r.run_id, "pending")
        if state in ("done", "queued", "running"):
            skipped[r.run_id] = state
        elif only and r.run_id not in only:
            skipped[r.run_id] = "not selected"
        elif retry_failed and state != "failed":
            skipped[r.run_id] = f"{state}, not failed"
        else:
            chosen.append(r)
    return chosen, skipped


def _stamp() -> str:
    t = time.time()
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(t)) + f"-{int(t * 1e6) % 1_000_000:06d}"


def _make_executor(kind: str, folder: Path, params: dict[str, Any]) -> Any:
    import submitit

    ex = submitit.AutoExecutor(folder=folder, cluster=kind)
    ex.update_parameters(**params)
    return ex


def _release(jobs: list[Any]) -> None:
    """Release held arrays (see ``executor_parameters``): their folders and pickles are in place now."""
    for base in sorted({j.job_id.split("_")[0] for j in jobs}):
        subprocess.run(["scontrol", "release", base], check=True, capture_output=True, text=True)


def _log(job: Any) -> str:
    try:
        return str(job.paths.stdout)
    except Exception:  # noqa: BLE001 - a log path is informative only
        return ""


def launch(
    spec: SweepSpec,
    out: str | Path,
    plan: list[PlannedRun],
    executor: str | None = None,
    only: tuple[str, ...] = (),
    retry_failed: bool = False,
    entry: str = DEFAULT_ENTRY,
) -> LaunchResult:
    """Submit the sweep's runs that are neither done, queued nor running; returns what was submitted.

    ``plan`` is ``make_plan(spec)`` (already written with ``write_plan``); ``executor`` overrides
    ``spec.launch.executor``; ``entry`` is the ``module:function`` each job calls with its run directory.
    """
    from florenz_scaling.launch.jobs import SlotJob, TrainJob

    kind = resolve_executor(executor or spec.launch.executor)
    validate_launch(spec, plan, kind, entry)
    sd = SweepDir(out)
    prepare_runs(spec, plan, out)
    chosen, skipped = select_runs(plan, out, only, retry_failed)
    for r in chosen:  # a hand-edited or damaged run.yaml fails here, before anything is submitted
        load_run(sd.run(r.run_id).run_yaml)
    result = LaunchResult(kind, None, skipped=skipped)
    if not chosen:
        return result
    folder = sd.jobs / _stamp() / "%j"
    result.folder = folder.parent
    ledger = Ledger(sd.ledger)
    for res, runs in group_by_resources(spec, chosen):
        if kind == "local":
            events = _submit_local(spec, res, runs, sd, folder, entry, result, SlotJob)
        else:
            params = executor_parameters(spec, res, kind, res.timeout_min)
            ex = _make_executor(kind, folder, params)
            with ex.batch():  # one sbatch --array for the whole group
                jobs = [ex.submit(TrainJob(entry, kind), str(sd.run(r.run_id).root)) for r in runs]
            if kind == "slurm":
                _release(jobs)
            events = [
                Event(
                    time.time(),
                    "submitted",
                    r.run_id,
                    j.job_id,
                    kind,
                    _log(j),
                    extra={"launch": folder.parent.name},
                )
                for r, j in zip(runs, jobs, strict=True)
            ]
            result.jobs += jobs
            result.submitted += [(r.run_id, j.job_id) for r, j in zip(runs, jobs, strict=True)]
        ledger.append(events)
    if kind == "debug":
        for job in result.jobs:  # debug jobs run here, now, one after another
            try:
                job.result()
            except Exception:  # noqa: BLE001 - the job wrote its failure to the ledger; go on with the rest
                pass
    return result


def _submit_local(
    spec: SweepSpec,
    res: Resources,
    runs: list[PlannedRun],
    sd: SweepDir,
    folder: Path,
    entry: str,
    result: LaunchResult,
    slot_job: type,
) -> list[Event]:
    n = min(spec.launch.array_parallelism, len(runs))
    slots = [runs[i::n] for i in range(n)]  # round robin: each slot gets a mix of sizes
    events = []
    for slot in slots:
        timeout = res.timeout_min * len(slot)  # a slot runs its runs in turn
        ex = _make_executor("local", folder, executor_parameters(spec, res, "local", timeout))
        job = ex.submit(slot_job(entry, "local"), [str(sd.run(r.run_id).root) for r in slot])
        result.jobs.append(job)
        for r in slot:
            result.submitted.append((r.run_id, job.job_id))
            events.append(
                Event(
                    time.time(),
                    "submitted",
                    r.run_id,
                    job.job_id,
                    "local",
                    _log(job),
                    extra={"launch": folder.parent.name},
                )
            )
    return events


def cancel(out: str | Path, only: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Cancel the live jobs of a sweep (``scancel`` / SIGTERM); returns ``(run_id, job_id)`` cancelled."""
    import os
    import signal

    from florenz_scaling.launch.status import sweep_status

    sd = SweepDir(out)
    live = [r for r in sweep_status(out) if r.state in ("queued", "running")]
    rows = [r for r in live if not only or r.run_id in only]
    # A local slot is one process for several runs: stopping it stops all of them, so record all of them.
    pids = {r.job_id for r in rows if r.executor == "local"}
    rows += [r for r in live if r.executor == "local" and r.job_id in pids and r not in rows]
    slurm_ids = sorted({r.job_id for r in rows if r.executor == "slurm"})
    if slurm_ids:
        subprocess.run(["scancel", *slurm_ids], check=False)
    for pid in sorted({r.job_id for r in rows if r.executor == "local"}):
        try:
            # The controller forwards SIGTERM to its tasks; the trainer checkpoints and the slot stops.
            os.kill(int(pid), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass
    Ledger(sd.ledger).append(
        Event(time.time(), "cancelled", r.run_id, r.job_id, r.executor, r.log) for r in rows
    )
    return [(r.run_id, r.job_id) for r in rows]
