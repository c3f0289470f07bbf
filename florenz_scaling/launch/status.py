"""What every run of a sweep is doing: done, running, queued, failed, partial or pending.

``sweep_status`` is the one run-state function: ``status`` prints it, ``run`` polls it while it waits, and
``report`` shows it (asking for ``scheduler=False``: a report may be written far from the cluster).

Sources, each read once however many runs there are: ``plan.csv`` (the runs and their steps, via
``plan.read_plan``), the ledger (the latest job of each run, via ``ledger.histories``), one bulk scheduler
query (``scheduler.job_states``), and per run the ``DONE`` marker and the tail of ``losses.jsonl`` (steps
done, latest held-out group losses).

- done: ``DONE`` exists.
- diverged: ``DONE`` exists but the latest held-out evaluation has a NaN or infinite group loss; its final
  point is not a measurement (``collect`` keeps those records out of the table).
- queued / running: its latest job is alive (for a local slot: running once the job said ``started``).
- failed: its latest job failed (the ledger's error and log path are shown) or ended without ``DONE``.
- partial: no live job, not failed, but it has records or checkpoints (e.g. cancelled): launching resumes it.
- pending: never submitted, or cancelled before it made progress.

A job that died without writing to the ledger (killed, out of memory, timed out for good) gets its ``failed``
event written here, so the ledger ends up telling every failure.

Without the scheduler (``scheduler=False``) a live job cannot be told queued from running, so a run whose job
has not said more than that it was submitted is ``submitted``, one whose job started is ``running`` (or
``requeued`` after a requeue), and a job that vanished without a word is not noticed.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from florenz_scaling.files import RunDir, SweepDir
from florenz_scaling.launch.ledger import Event, Ledger, RunHistory, histories
from florenz_scaling.launch.scheduler import LIVE, job_states
from florenz_scaling.plan import read_plan

STATES = ("done", "diverged", "running", "queued", "failed", "partial", "pending")
# What a run can be when the scheduler is not asked (see the module docstring).
OFFLINE_STATES = ("done", "diverged", "running", "requeued", "submitted", "failed", "partial", "pending")
_TAIL_BYTES = 64 * 1024


@dataclass
class RunStatus:
    """One run's state: a row of ``florenz-scaling status``, of ``run``'s progress and of the report."""

    run_id: str
    size: str
    state: str
    total_steps: int
    steps_done: int = 0
    job_id: str = ""
    executor: str = ""
    log: str = ""
    error: str = ""
    losses: dict[str, float] = field(default_factory=dict)  # latest eval step: group -> weighted loss
    # The ledger's view over the run's whole history (any job), for the report's run table.
    last_event: str = ""  # the run's last ledger event
    last_job_id: str = ""  # the job that wrote it
    last_time: float | None = None  # when (epoch seconds)
    attempts: int = 0  # submissions plus requeues


def planned_runs(sd: SweepDir) -> list[dict[str, str]]:
    """The sweep's runs (``run_id``, ``size``, ``steps``) from ``plan.csv`` or, without one, ``run.yaml``."""
    if sd.plan_csv.exists():
        return [{"run_id": r["run_id"], "size": r["size"], "steps": r["steps"]} for r in read_plan(sd.root)]
    from florenz_scaling.spec import load_run  # only a sweep without plan.csv pays for YAML parsing

    rows = []
    for y in sorted(sd.runs.glob("*/run.yaml")):
        run = load_run(y)
        rows.append({"run_id": y.parent.name, "size": run.size, "steps": str(run.steps)})
    return rows


def progress(losses: Path) -> tuple[int, dict[str, float]]:
    """(latest step with a record, {group: sample-weighted loss at the latest eval step}) from the tail.

    Only the tail is read (a long run's file grows with every eval); damaged lines are skipped here, the
    ``collect`` step is where they are reported.
    """
    try:
        with open(losses, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - _TAIL_BYTES))
            data = fh.read()
    except OSError:
        return 0, {}
    lines = data.split(b"\n")
    if size > _TAIL_BYTES:
        lines = lines[1:]  # the first line of a tail is cut
    step, evals = 0, []
    for line in lines:
        try:
            d = json.loads(line)
            s = int(d["step"])
        except (ValueError, KeyError, TypeError):
            continue
        step = max(step, s)
        if d.get("kind") == "eval":
            evals.append(d)
    if not evals:
        return step, {}
    last = max(int(d["step"]) for d in evals)
    sums: dict[str, list[float]] = {}
    for d in evals:
        if int(d["step"]) == last and d.get("group"):
            w = float(d.get("samples") or 1)
            acc = sums.setdefault(d["group"], [0.0, 0.0])
            acc[0] += float(d["loss"]) * w
            acc[1] += w
    return step, {g: s / w for g, (s, w) in sorted(sums.items()) if w}


def _has_progress(rd: RunDir, steps_done: int) -> bool:
    # Records or a checkpoint mean a relaunch resumes rather than starts: "partial", not "pending".
    return steps_done > 0 or (rd.checkpoints.exists() and any(rd.checkpoints.iterdir()))


def _state(h: RunHistory | None, live: tuple[str, str] | None, rd: RunDir, steps: int) -> tuple[str, str]:
    """(state, error) for a run without DONE."""
    if h is None or h.submitted is None:
        return ("partial" if _has_progress(rd, steps) else "pending"), ""
    terminal = h.terminal
    job_state, detail = live or ("unknown", "")
    if job_state in LIVE:
        if h.submitted.executor == "local":
            # A local slot runs its runs in turn: alive means this run waits or runs, unless it is over.
            if terminal is not None and terminal.event == "failed":
                return "failed", terminal.error
            if terminal is not None and terminal.event == "finished":
                return "failed", "the job said finished but DONE is missing"
            return ("running" if h.started else "queued"), ""
        return job_state, ""
    if terminal is not None and terminal.event == "failed":
        return "failed", terminal.error
    if terminal is not None and terminal.event == "cancelled" or job_state == "cancelled":
        return ("partial" if _has_progress(rd, steps) else "pending"), ""
    if job_state == "failed":
        return "failed", f"job ended {detail}"
    if job_state == "unknown" and h.submitted.executor == "slurm":
        return "failed", f"job {h.submitted.job_id} is unknown to squeue and sacct"
    return "failed", f"job ended without DONE ({detail or job_state})"


def _offline_state(h: RunHistory | None, rd: RunDir, steps: int) -> tuple[str, str]:
    """(state, error) for a run without DONE, from the ledger alone (no scheduler query)."""
    idle = ("partial" if _has_progress(rd, steps) else "pending"), ""
    if h is None:
        return idle
    terminal = h.terminal
    if terminal is not None and terminal.event == "failed":
        return "failed", terminal.error
    if terminal is not None and terminal.event == "finished":
        return "failed", "the job said finished but DONE is missing"
    if h.submitted is None or terminal is not None:  # never submitted, or cancelled
        return idle
    if h.events and h.events[-1].event == "requeued":
        return "requeued", ""
    return ("running" if h.started else "submitted"), ""


def sweep_status(out: str | Path, reconcile: bool = True, scheduler: bool = True) -> list[RunStatus]:
    """The status of every run of the sweep in ``out``, in plan order.

    ``scheduler``: ask SLURM / the local process table which jobs are alive (one bulk query); without it the
    state comes from files alone (``OFFLINE_STATES``). ``reconcile``: append a ``failed`` event for each job
    the scheduler says ended without a word, so the ledger tells every failure.
    """
    sd = SweepDir(out)
    ledger = Ledger(sd.ledger)
    hist = histories(ledger.read())
    runs = planned_runs(sd)
    wanted: dict[str, list[str]] = {}
    for r in runs:
        h = hist.get(r["run_id"])
        if h is not None and h.submitted is not None and not sd.run(r["run_id"]).done.exists():
            wanted.setdefault(h.submitted.executor, []).append(h.submitted.job_id)
    live = job_states(wanted) if scheduler else {}
    rows, new_events = [], []
    for r in runs:
        rd = sd.run(r["run_id"])
        h = hist.get(r["run_id"])
        sub = h.submitted if h is not None else None
        steps, losses = progress(rd.losses)
        row = RunStatus(r["run_id"], r["size"], "done", int(r["steps"]), steps, losses=losses)
        if sub is not None:
            row.job_id, row.executor, row.log = sub.job_id, sub.executor, sub.log
        if h is not None and h.latest is not None:
            latest = h.latest
            row.last_event, row.last_job_id, row.last_time = latest.event, latest.job_id, latest.time
            row.attempts = h.attempts
        if rd.done.exists() and any(not math.isfinite(v) for v in losses.values()):
            row.state, row.error = "diverged", "non-finite held-out loss at step " + str(steps)
        elif not rd.done.exists() and not scheduler:
            row.state, row.error = _offline_state(h, rd, steps)
        elif not rd.done.exists():
            state_live = live.get((sub.executor, sub.job_id)) if sub is not None else None
            row.state, row.error = _state(h, state_live, rd, steps)
            if row.state == "failed" and h is not None and h.terminal is None and sub is not None:
                new_events.append(
                    Event(0.0, "failed", row.run_id, sub.job_id, sub.executor, sub.log, row.error)
                )
        rows.append(row)
    if reconcile and new_events:
        now = time.time()
        ledger.append(Event(now, e.event, e.run_id, e.job_id, e.executor, e.log, e.error) for e in new_events)
    return rows


def format_status(rows: list[RunStatus]) -> str:
    """The status table, a count per state, and each failure with its error and log path."""
    head = f"{'run_id':32s} {'size':8s} {'state':8s} {'job':>12s} {'steps':>13s}  latest losses"
    lines = [head, "-" * len(head)]
    for r in rows:
        losses = " ".join(f"{g}={v:.4f}" for g, v in r.losses.items())
        steps = f"{r.steps_done}/{r.total_steps}"
        lines.append(f"{r.run_id:32s} {r.size:8s} {r.state:8s} {r.job_id or '-':>12s} {steps:>13s}  {losses}")
    counts = {s: sum(r.state == s for r in rows) for s in STATES}
    lines.append(f"{len(rows)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    for r in rows:
        if r.state == "diverged":
            lines.append(f"DIVERGED {r.run_id}: {r.error}; its final losses are left out of fits")
        if r.state == "failed":
            lines.append(f"FAILED {r.run_id}: {r.error}")
            lines.append(f"    log: {r.log or '(none)'}")
    return "\n".join(lines)
