"""What every run of a sweep is doing: done, running, queued, failed, partial or pending.

Sources, each read once however many runs there are: ``plan.csv`` (the runs and their steps), the ledger (the
latest job of each run), one bulk scheduler query (``jobstate``), and per run the ``DONE`` marker and the tail
of ``losses.jsonl`` (steps done, latest held-out group losses).

- done: ``DONE`` exists.
- queued / running: its latest job is alive (for a local slot: running once the job said ``started``).
- failed: its latest job failed (the ledger's error and log path are shown) or ended without ``DONE``.
- partial: no live job, not failed, but it has records or checkpoints (e.g. cancelled): launching resumes it.
- pending: never submitted, or cancelled before it made progress.

A job that died without writing to the ledger (killed, out of memory, timed out for good) gets its ``failed``
event written here, so the ledger ends up telling every failure.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from florenz_scaling.files import RunDir, SweepDir
from florenz_scaling.launch.ledger import Event, Ledger, RunHistory, histories
from florenz_scaling.launch.scheduler import LIVE, job_states

STATES = ("done", "running", "queued", "failed", "partial", "pending")
_TAIL_BYTES = 64 * 1024


@dataclass
class RunStatus:
    """One row of ``florenz-scaling status``."""

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


def planned_runs(sd: SweepDir) -> list[dict[str, str]]:
    """The sweep's runs from ``plan.csv`` (or, without one, from ``runs/*/run.yaml``)."""
    if sd.plan_csv.exists():
        with open(sd.plan_csv, newline="") as fh:
            return [
                {"run_id": r["run_id"], "size": r["size"], "steps": r["steps"]} for r in csv.DictReader(fh)
            ]
    from florenz_scaling.spec import load_run

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


def sweep_status(out: str | Path, reconcile: bool = True) -> list[RunStatus]:
    """The status of every run; with ``reconcile``, unrecorded failures are appended to the ledger."""
    sd = SweepDir(out)
    ledger = Ledger(sd.ledger)
    hist = histories(ledger.read())
    runs = planned_runs(sd)
    wanted: dict[str, list[str]] = {}
    for r in runs:
        h = hist.get(r["run_id"])
        if h is not None and h.submitted is not None and not sd.run(r["run_id"]).done.exists():
            wanted.setdefault(h.submitted.executor, []).append(h.submitted.job_id)
    live = job_states(wanted)
    rows, new_events = [], []
    for r in runs:
        rd = sd.run(r["run_id"])
        h = hist.get(r["run_id"])
        sub = h.submitted if h is not None else None
        steps, losses = progress(rd.losses)
        row = RunStatus(r["run_id"], r["size"], "done", int(r["steps"]), steps, losses=losses)
        if sub is not None:
            row.job_id, row.executor, row.log = sub.job_id, sub.executor, sub.log
        if not rd.done.exists():
            state_live = live.get((sub.executor, sub.job_id)) if sub is not None else None
            row.state, row.error = _state(h, state_live, rd, steps)
            if row.state == "failed" and h is not None and h.terminal is None and sub is not None:
                new_events.append(
                    Event(0.0, "failed", row.run_id, sub.job_id, sub.executor, sub.log, row.error)
                )
        rows.append(row)
    if reconcile and new_events:
        import time

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
        if r.state == "failed":
            lines.append(f"FAILED {r.run_id}: {r.error}")
            lines.append(f"    log: {r.log or '(none)'}")
    return "\n".join(lines)
