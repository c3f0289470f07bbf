"""Live state of submitted jobs, in bulk: one ``squeue`` and one ``sacct`` call for any number of SLURM jobs,
``/proc`` for local jobs (their ids are the pids of submitit's local controllers).

States are normalised to ``queued``, ``running``, ``completed``, ``failed``, ``cancelled`` or ``unknown``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

_SLURM = {
    "PENDING": "queued",
    "REQUEUED": "queued",
    "REQUEUE_FED": "queued",
    "REQUEUE_HOLD": "queued",
    "CONFIGURING": "queued",
    "RESV_DEL_HOLD": "queued",
    "SUSPENDED": "queued",
    "RUNNING": "running",
    "COMPLETING": "running",
    "SIGNALING": "running",
    "STAGE_OUT": "running",
    "RESIZING": "running",
    "COMPLETED": "completed",
    "CANCELLED": "cancelled",
    "PREEMPTED": "queued",  # with requeue enabled a preempted job comes back
    "FAILED": "failed",
    "TIMEOUT": "failed",
    "NODE_FAIL": "failed",
    "BOOT_FAIL": "failed",
    "DEADLINE": "failed",
    "OUT_OF_MEMORY": "failed",
    "REVOKED": "cancelled",
    "SPECIAL_EXIT": "failed",
}
LIVE = ("queued", "running")


def slurm_available(timeout: float = 10.0) -> bool:
    """Whether a SLURM controller answers (``srun`` on PATH alone proves nothing)."""
    if shutil.which("sinfo") is None:
        return False
    try:
        r = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and bool(r.stdout.strip())


def _normalise(raw: str) -> str:
    word = raw.split()[0].rstrip("+") if raw.strip() else ""
    return _SLURM.get(word, "unknown")


def slurm_states(job_ids: list[str], timeout: float = 30.0) -> dict[str, tuple[str, str]]:
    """``job_id -> (state, raw SLURM state)`` for array-task or plain ids such as ``"12_3"`` or ``"13"``.

    squeue knows live jobs; sacct (accounting) knows finished ones. Ids neither knows are left out.
    """
    wanted = set(job_ids)
    out: dict[str, tuple[str, str]] = {}
    if not wanted or shutil.which("squeue") is None:
        return out
    # -r: one line per array task, not "12_[3-9%4]" for the pending ones; -t all: also the jobs that
    # ended in the last MinJobAge seconds, which accounting may not have recorded yet.
    for line in _lines(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T"], timeout):
        jid, _, raw = line.partition("|")
        if jid in wanted:
            out[jid] = (_normalise(raw), raw)
    missing = wanted - set(out)
    if missing and shutil.which("sacct"):
        # Ask for whole arrays (their base ids): a short command line however many tasks there are.
        bases = sorted({j.split("_")[0] for j in missing})
        for line in _lines(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(bases)], timeout):
            jid, _, raw = line.partition("|")
            if jid in missing:
                out[jid] = (_normalise(raw), raw)
    return out


def local_states(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """``pid -> (state, detail)`` for submitit local controllers: running while the process lives."""
    out = {}
    for jid in job_ids:
        state, detail = "completed", "process gone"
        try:
            pid = int(jid)
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
            # A zombie is a finished job whose parent has not reaped it; a foreign process reused the pid.
            if fields[0] != "Z":
                if b"submitit.local._local" in cmdline:
                    state, detail = "running", "process alive"
                elif cmdline == Path(f"/proc/{fields[1]}/cmdline").read_bytes():
                    # Forked but not yet exec'd: it still shows its parent's command line. On a loaded
                    # machine that lasts seconds, and calling it gone failed a job that then ran fine.
                    state, detail = "running", "process starting"
        except (ValueError, OSError, IndexError):
            pass
        out[jid] = (state, detail)
    return out


def job_states(jobs: dict[str, list[str]]) -> dict[tuple[str, str], tuple[str, str]]:
    """``{executor: [job ids]} -> {(executor, job id): (state, detail)}``, with one query per executor."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for executor, ids in jobs.items():
        ids = sorted(set(ids))
        if executor == "slurm":
            found = slurm_states(ids)
        elif executor == "local":
            found = local_states(ids)
        else:  # debug runs inside the launching process: over when it returned
            found = {}
        for jid in ids:
            out[(executor, jid)] = found.get(jid, ("unknown", "not known to the scheduler"))
    return out


def _lines(cmd: list[str], timeout: float) -> list[str]:
    """stdout lines of a SLURM query; none when the command is missing, fails or hangs."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return r.stdout.splitlines() if r.returncode == 0 else []
