"""WSD runs that start from another run's checkpoint (trunk segments, branches): which may be launched now,
and the SLURM options that make a job wait for the one writing its start checkpoint.

On SLURM a run may go with a start run that is queued or running (its job depends on that job); the local
and debug executors order runs inside one launch instead, so there the start run must be done or go too.
"""

from __future__ import annotations

from pathlib import Path

from florenz_scaling.plan import PlannedRun


def dependency_parameters(job_ids: list[str]) -> dict[str, str]:
    """sbatch options that hold a job until ``job_ids`` succeeded; if one fails, SLURM cancels it (else it
    would wait forever), and the run is pending again for the next launch."""
    return {"dependency": "afterok:" + ":".join(job_ids), "kill-on-invalid-dep": "yes"}


def startable(
    chosen: list[PlannedRun], skipped: dict[str, str], states: dict[str, str], executor: str
) -> list[PlannedRun]:
    """``chosen`` less the runs whose start run will not have finished (dropping a trunk segment drops
    everything that starts from it); each dropped run's reason goes into ``skipped``."""
    while True:
        ids = {r.run_id for r in chosen}
        live = ("queued", "running") if executor == "slurm" else ()
        blocked = [
            r
            for r in chosen
            if r.run.start_from is not None
            and r.run.start_from not in ids
            and states.get(r.run.start_from) not in ("done", *live)
        ]
        if not blocked:
            return chosen
        for r in blocked:
            p = r.run.start_from
            state = states.get(p or "", "pending")
            waiting = state in ("queued", "running")
            skipped[r.run_id] = (
                f"waits for {p} ({state} in another job); launch again once it is done"
                if waiting
                else f"starts from {p}: {state}, not launched"
            )
        chosen = [r for r in chosen if r not in blocked]


def live_parents(chosen: list[PlannedRun], out: Path) -> dict[str, str]:
    """Job ids of the queued or running runs that chosen runs start from (SLURM only lets them through)."""
    from florenz_scaling.launch.status import sweep_status

    ids = {r.run_id for r in chosen}
    parents = {r.run.start_from for r in chosen if r.run.start_from is not None} - ids
    if not parents:
        return {}  # no second scheduler query for a sweep without WSD runs
    return {
        s.run_id: s.job_id
        for s in sweep_status(out, reconcile=False)
        if s.run_id in parents and s.state in ("queued", "running")
    }
