"""Launch a sweep through submitit: ``slurm`` job arrays, ``local`` processes or the in-process ``debug``
executor.

- One job array per sweep on SLURM. Runs whose resources differ (``launch.per_size``) cannot share an array
  (an array has one set of sbatch options), so the runs are grouped by identical resources, one array per
  group.
- The ``local`` executor has no queue: it starts ``array_parallelism`` slots per resource group, each working
  through its share of the runs in turn (so a slot's timeout is the sum of its runs' timeouts).
- ``submissions`` is the one place that turns a plan into what is submitted (resource groups, local slots,
  executor parameters, timeouts, job folder): ``launch`` submits exactly that list and ``--dry-run`` prints
  it, so the two cannot drift apart.
- Idempotent: a run with ``DONE`` is skipped, and so is a run whose latest job is queued or running.
  Everything that can fail before submission is checked first; on any error nothing is submitted.
- ``runs/<id>/run.yaml`` is written once: the run id is a hash of the run's spec, so an existing file already
  describes the same run (and a finished run's directory is never touched).
- submitit's folder is fresh per launch (``jobs/<stamp>/%j``): SLURM job ids restart after a purge, and a
  reused folder would hand back an older job's result.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from florenz_scaling.files import SweepDir, exclusive_lock
from florenz_scaling.launch.dependencies import dependency_parameters, live_parents, startable
from florenz_scaling.launch.jobs import DEFAULT_ENTRY
from florenz_scaling.launch.ledger import Event, Ledger
from florenz_scaling.launch.scheduler import slurm_available
from florenz_scaling.launch.validate import LaunchError as LaunchError  # re-exported: callers catch it here
from florenz_scaling.launch.validate import first_shard as first_shard
from florenz_scaling.launch.validate import validate_launch
from florenz_scaling.plan import PlannedRun, chains, depths
from florenz_scaling.spec import EXECUTORS, Profile, Resources, SpecError, SweepSpec, dump_yaml, load_run


@dataclass(frozen=True)
class Submission:
    """One ``submitit`` submission: an executor configured once, and the runs it is handed.

    On ``slurm`` and ``debug`` it is one job array (one ``executor.batch()``, a ``TrainJob`` per run, in
    order); on ``local`` it is one slot: a single ``SlotJob`` that runs ``run_dirs`` one after another.
    """

    executor: str  # slurm, local or debug (resolved, never auto)
    group: int  # index of the resource group (runs with identical resources) in plan order
    resources: Resources
    runs: tuple[PlannedRun, ...]
    run_dirs: tuple[Path, ...]  # what the job callable is called with, one per run
    parameters: dict[str, Any]  # ``AutoExecutor.update_parameters(**parameters)``, exactly
    folder: Path  # submitit's job folder: ``OUT/jobs/<stamp>/%j``
    entry: str  # ``module:function`` each run calls with its run directory
    # Runs (WSD: the trunk segment these runs start from) whose jobs must succeed before these start: on
    # SLURM ``dependency_parameters`` of their job ids (known once submitted) join ``parameters``; a local
    # slot needs none, it holds a whole trunk with its branches in a valid order.
    after: tuple[str, ...] = ()

    @property
    def timeout_min(self) -> int:
        """The job's time limit in minutes (on ``local`` the slot's: every run's limit, one after another)."""
        return int(self.parameters["timeout_min"])

    @property
    def one_job(self) -> bool:
        """Whether the runs share one job (a local slot) rather than getting one array task each."""
        return self.executor == "local"


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
        _apply_profile(params, spec.launch.profile, res)
    return params


def _apply_profile(params: dict[str, Any], profile: Profile, res: Resources) -> None:
    """Ask SLURM for the GPUs and memory in this site's words (``launch.profile``); the default profile
    leaves submitit's own ``--gpus-per-node`` and ``--mem`` as they are."""
    if profile.srun_args:
        params["slurm_srun_args"] = list(profile.srun_args)
    if profile.memory == "per-gpu":
        # --mem and --mem-per-gpu are mutually exclusive (submitit #1769): the generic mem_gb must go.
        del params["mem_gb"]
        params["slurm_mem_per_gpu"] = _mem(profile.mem_per_gpu_gb or 0.0)
    n = res.gpus_per_node
    if not n or (profile.gpus == "gpus-per-node" and profile.gpu_type is None):
        return
    params.pop("gpus_per_node")  # the generic key is submitit's --gpus-per-node=N; replaced below
    typed = f"{profile.gpu_type}:" if profile.gpu_type else ""
    if profile.gpus == "gpus-per-node":
        params["slurm_gpus_per_node"] = f"{typed}{n}"
    elif profile.gpus == "gres":
        params["slurm_gres"] = f"gpu:{typed}{n}"
    elif profile.gpus == "gpus":  # the job's total; submitit has no key for it
        params["slurm_additional_parameters"]["gpus"] = f"{typed}{n * res.nodes}"
    else:  # gpus-per-task (validated: gpus_per_node is a multiple of tasks_per_node)
        per_task = n // res.tasks_per_node
        params["slurm_gpus_per_task"] = f"{typed}{per_task}" if typed else per_task


def _mem(gb: float) -> str:
    """A memory size as submitit writes ``--mem`` (whole GB, else MB)."""
    return f"{int(gb)}GB" if gb == int(gb) else f"{int(gb * 1024)}MB"


def group_by_resources(spec: SweepSpec, runs: list[PlannedRun]) -> list[tuple[Resources, list[PlannedRun]]]:
    """Runs grouped by identical resources (one job array each), in plan order."""
    groups: dict[str, tuple[Resources, list[PlannedRun]]] = {}
    for r in runs:
        res = spec.launch.resources_for(r.run.size)
        key = json.dumps(dataclasses.asdict(res), sort_keys=True)
        groups.setdefault(key, (res, []))[1].append(r)
    return list(groups.values())


def local_slots(spec: SweepSpec, runs: list[PlannedRun]) -> list[list[PlannedRun]]:
    """A resource group's runs dealt to at most ``array_parallelism`` local slots; a WSD trunk and its
    branches (a chain) go to one slot, each run after the one it starts from.

    Longest first, each chain to the slot with the least compute so far: dealt round robin, the largest run
    of the demo started sixth and ran alone for its last three minutes."""
    units = chains(runs)
    n = min(spec.launch.array_parallelism, len(units))
    slots: list[list[PlannedRun]] = [[] for _ in range(n)]
    load = [0.0] * n
    for unit in sorted(units, key=lambda u: -sum(r.added_gmacs for r in u)):  # stable among equals
        i = min(range(n), key=load.__getitem__)
        slots[i] += unit
        load[i] += sum(r.added_gmacs for r in unit)
    return slots


def submissions(
    spec: SweepSpec,
    plan: list[PlannedRun],
    out: str | Path,
    executor: str,
    entry: str = DEFAULT_ENTRY,
    stamp: str | None = None,
    live: dict[str, str] | None = None,
) -> list[Submission]:
    """What launching ``plan`` into ``out`` submits, in submission order; nothing is checked or written.

    ``executor`` may be ``auto``; ``stamp`` names the launch's job folder (default: now, to the microsecond;
    the dry run passes a placeholder so that its text is the same on every machine). ``live``: run id ->
    job id of runs outside ``plan`` whose job is still queued or running (a WSD run starting from one
    depends on that job).
    """
    kind = resolve_executor(executor)
    folder = SweepDir(out).jobs / (stamp or _stamp()) / "%j"
    ids, level = {r.run_id for r in plan}, depths(plan)
    subs = []
    for group, (res, runs) in enumerate(group_by_resources(spec, plan)):
        if kind == "local":  # a slot works through its runs in turn, trunks before their branches
            batches = [((), chunk) for chunk in local_slots(spec, runs)]
        else:  # an array per dependency: the runs that start from the same run (or from none) share one
            by_after: dict[tuple[int, tuple[str, ...]], list[PlannedRun]] = {}
            for r in runs:
                p = r.run.start_from
                after = (p,) if p is not None and (p in ids or p in (live or {})) else ()
                by_after.setdefault((level[r.run_id], after), []).append(r)
            batches = [(after, chunk) for (_, after), chunk in by_after.items()]
        for after, chunk in batches:
            timeout = res.timeout_min * (len(chunk) if kind == "local" else 1)
            subs.append(
                Submission(
                    executor=kind,
                    group=group,
                    resources=res,
                    runs=tuple(chunk),
                    run_dirs=tuple(SweepDir(out).run(r.run_id).root for r in chunk),
                    parameters=executor_parameters(spec, res, kind, timeout),
                    folder=folder,
                    entry=entry,
                    after=after,
                )
            )
    # Parents' arrays first (stable: a sweep without WSD keeps its order), so their job ids are known.
    return sorted(subs, key=lambda sub: level[sub.runs[0].run_id])


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
    plan: list[PlannedRun],
    out: str | Path,
    only: tuple[str, ...] = (),
    retry_failed: bool = False,
    executor: str = "slurm",
) -> tuple[list[PlannedRun], dict[str, str]]:
    """The runs to submit now, and the reason each other run is skipped.

    A run that starts from another (WSD) goes only with a start run that is done or goes too, or on SLURM
    one whose job is alive (it depends on that job); else it waits for a later launch.
    """
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
        if state in ("done", "diverged", "queued", "running"):  # a diverged run would diverge again
            skipped[r.run_id] = state
        elif only and r.run_id not in only:
            skipped[r.run_id] = "not selected"
        elif retry_failed and state != "failed":
            skipped[r.run_id] = f"{state}, not failed"
        else:
            chosen.append(r)
    return startable(chosen, skipped, states, executor), skipped


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
    kind = resolve_executor(executor or spec.launch.executor)
    validate_launch(spec, plan, kind, entry)
    sd = SweepDir(out)
    sd.root.mkdir(parents=True, exist_ok=True)
    # From choosing the runs to recording them in the ledger, one launch at a time: a concurrent launch
    # waits here, then finds this one's runs queued and submits only what is still unfinished.
    with exclusive_lock(sd.launch_lock, what=f"sweep {sd.root}"):
        result = _launch_locked(spec, sd, plan, kind, only, retry_failed, entry)
    if kind == "debug":
        for job in result.jobs:  # debug jobs run here, now, one after another
            try:
                job.result()
            except Exception:  # noqa: BLE001 - the job wrote its failure to the ledger; go on with the rest
                pass
    return result


def _launch_locked(
    spec: SweepSpec,
    sd: SweepDir,
    plan: list[PlannedRun],
    kind: str,
    only: tuple[str, ...],
    retry_failed: bool,
    entry: str,
) -> LaunchResult:
    prepare_runs(spec, plan, sd.root)
    chosen, skipped = select_runs(plan, sd.root, only, retry_failed, kind)
    for r in chosen:  # a hand-edited or damaged run.yaml fails here, before anything is submitted
        load_run(sd.run(r.run_id).run_yaml)
    result = LaunchResult(kind, None, skipped=skipped)
    if not chosen:
        return result
    job_of = live_parents(chosen, sd.root)  # run id -> job id: what a WSD run's job may depend on
    subs = submissions(spec, chosen, sd.root, kind, entry, live=job_of)
    result.folder = subs[0].folder.parent
    ledger = Ledger(sd.ledger)
    for sub in subs:
        jobs = _submit(sub, [job_of[p] for p in sub.after])
        # A local slot is one job for all its runs; an array has one task per run.
        pairs = [(r, jobs[0]) for r in sub.runs] if sub.one_job else list(zip(sub.runs, jobs, strict=True))
        job_of.update((r.run_id, j.job_id) for r, j in pairs)
        result.jobs += jobs
        result.submitted += [(r.run_id, j.job_id) for r, j in pairs]
        extra = {"launch": sub.folder.parent.name}
        ledger.append(
            Event(time.time(), "submitted", r.run_id, j.job_id, kind, _log(j), extra=extra) for r, j in pairs
        )
    return result


def _submit(sub: Submission, after_jobs: tuple[str, ...] | list[str] = ()) -> list[Any]:
    """Hand one submission to submitit; returns its jobs (one for a local slot, else one per run).
    ``after_jobs``: the job ids of ``sub.after`` (on SLURM its jobs wait for them)."""
    from florenz_scaling.launch.jobs import SlotJob, TrainJob

    params = sub.parameters
    if after_jobs and sub.executor == "slurm":
        extra = {**params.get("slurm_additional_parameters", {}), **dependency_parameters(list(after_jobs))}
        params = {**params, "slurm_additional_parameters": extra}
    ex = _make_executor(sub.executor, sub.folder, params)
    if sub.one_job:
        return [ex.submit(SlotJob(sub.entry, sub.executor), [str(d) for d in sub.run_dirs])]
    with ex.batch():  # one sbatch --array for the whole group
        jobs = [ex.submit(TrainJob(sub.entry, sub.executor), str(d)) for d in sub.run_dirs]
    if sub.executor == "slurm":
        _release(jobs)
    return jobs
