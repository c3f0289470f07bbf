"""The sweep's ledger: ``OUT/ledger.jsonl``, an append-only log of what happened to every run's jobs.

One JSON object per line: ``{time, event, run_id, job_id, executor, log, error, ...}`` with ``event`` one of
``submitted``, ``started``, ``requeued``, ``finished``, ``failed``, ``cancelled``. The launcher writes
``submitted`` (and ``cancelled``), the jobs themselves write ``started``/``requeued``/``finished``/``failed``,
and ``status`` writes ``failed`` for a job that died without saying so (killed, out of memory). Many jobs
append at once, so each event is one ``write`` of one line on a file opened with ``O_APPEND`` under an
exclusive lock.

This is the one reader of the ledger: ``status`` (and through it ``run`` and ``report``) folds it with
``histories``; nothing else parses ``ledger.jsonl``.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# "round": one round of `run --adaptive` (run_id "_design"; what it bought and the target's interval).
EVENTS = ("submitted", "started", "requeued", "finished", "failed", "cancelled", "round")
# Events after which a job is over, as far as the ledger knows.
TERMINAL = ("finished", "failed", "cancelled")


@dataclass(frozen=True)
class Event:
    """One ledger line."""

    time: float
    event: str
    run_id: str
    job_id: str = ""
    executor: str = ""
    log: str = ""
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The event as one JSON line (without the newline); ``extra`` keys follow the fixed ones."""
        d = {
            "time": round(self.time, 3),
            "event": self.event,
            "run_id": self.run_id,
            "job_id": self.job_id,
            "executor": self.executor,
            "log": self.log,
            "error": self.error,
            **self.extra,
        }
        return json.dumps(d, sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        """An event from a parsed ledger line; keys other than the fixed ones go into ``extra``."""
        known = {"time", "event", "run_id", "job_id", "executor", "log", "error"}
        return cls(
            time=float(d.get("time", 0.0)),
            event=str(d["event"]),
            run_id=str(d["run_id"]),
            job_id=str(d.get("job_id", "") or ""),
            executor=str(d.get("executor", "") or ""),
            log=str(d.get("log", "") or ""),
            error=str(d.get("error", "") or ""),
            extra={k: v for k, v in d.items() if k not in known},
        )


class Ledger:
    """Append and read ``ledger.jsonl``; safe for many concurrent writers on one file system."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, events: Iterable[Event]) -> None:
        """Append events; all lines go out in one locked write so concurrent writers never interleave."""
        text = "".join(e.to_json() + "\n" for e in events)
        if not text:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = text.encode()
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a writer died mid-line: start ours on a line of its own
            while data:
                n = os.write(fd, data)
                data = data[n:]
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock

    def record(self, event: str, run_id: str, **fields: Any) -> Event:
        """Append one event built from keyword fields (unknown keys go into ``extra``); returns it."""
        if event not in EVENTS:
            raise ValueError(f"unknown ledger event {event!r}; use one of {', '.join(EVENTS)}")
        base = {k: str(fields.pop(k)) for k in ("job_id", "executor", "log", "error") if k in fields}
        e = Event(time=time.time(), event=event, run_id=run_id, extra=fields, **base)
        self.append([e])
        return e

    def read(self) -> list[Event]:
        """All events in file order. A torn last line (a writer killed mid-write) or junk is skipped."""
        if not self.path.exists():
            return []
        events = []
        for line in self.path.read_bytes().split(b"\n"):
            if not line.strip():
                continue
            try:
                events.append(Event.from_dict(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                continue  # the ledger is a log, not data: one bad line must not hide the others
        return events


@dataclass
class RunHistory:
    """What the ledger says about one run: its latest submission and what followed it."""

    run_id: str
    submitted: Event | None = None  # the latest submission
    events: list[Event] = field(default_factory=list)  # events of the latest submission's job, in order
    # Over the run's whole history, whichever job wrote them: the report shows how often a run was tried.
    latest: Event | None = None  # the run's last event in file order
    attempts: int = 0  # submissions plus requeues

    @property
    def last(self) -> Event | None:
        """The latest event of the current job (its submission when nothing followed it)."""
        return self.events[-1] if self.events else self.submitted

    @property
    def terminal(self) -> Event | None:
        """The latest terminal event of the current job, if any (a requeue after it reopens the job)."""
        for e in reversed(self.events):
            if e.event in TERMINAL:
                return e
            if e.event in ("requeued", "started"):
                return None
        return None

    @property
    def started(self) -> bool:
        """Whether the current job began running the run (``started`` or, after a requeue, ``requeued``)."""
        return any(e.event in ("started", "requeued") for e in self.events)


def histories(events: list[Event]) -> dict[str, RunHistory]:
    """Fold the ledger into one ``RunHistory`` per run: its current job is its latest submission's."""
    out: dict[str, RunHistory] = {}
    for e in events:
        h = out.setdefault(e.run_id, RunHistory(e.run_id))
        h.latest = e
        h.attempts += int(e.event in ("submitted", "requeued"))
        if e.event == "submitted":
            h.submitted, h.events = e, []
        elif h.submitted is None or e.job_id in ("", h.submitted.job_id):
            h.events.append(e)
    return out
