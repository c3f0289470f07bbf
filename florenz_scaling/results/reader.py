"""The one reader of a run's record files, with the one set of damaged-file rules (losses and metrics alike).

Damaged record files never crash a collection, and bad data is never used silently:
- a missing file is reported (``missing``) and yields nothing: the run has no records of that kind yet;
- a truncated last line (a writer killed mid-write, which training recovers from on resume) is dropped and
  the file's complete lines are used, with a warning;
- any other bad line (not JSON, not a record, another run's id, a step past the run's end) means the file
  cannot be trusted: the whole file is skipped, with a warning listing the file and its bad lines;
- a well-formed record with a NaN or infinite value (the run diverged) is kept out of what is returned,
  reported with file and line;
- a record whose key (kind, run, step, pair, labels) an earlier line already had is a writer's bug (a
  resumed run rewrites its records exactly once): reported in ``duplicates``; collectors refuse to write a
  table from such a file (``DuplicateRecordsError``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from florenz_scaling.results.records import Record, read_lines


class CollectWarning(UserWarning):
    """A record file was damaged: part or all of it was left out of the table."""


class DuplicateRecordsError(ValueError):
    """The same record key appears more than once in a run's file."""


@dataclass
class FileReport:
    """What reading one record file found besides its usable records."""

    path: Path
    missing: bool = False
    truncated_line: int | None = None  # the unterminated last line that was dropped
    bad_lines: list[tuple[int, str]] = field(default_factory=list)  # non-empty: the file was skipped
    nonfinite: list[tuple[int, Record]] = field(default_factory=list)
    duplicates: list[tuple[int, tuple[Any, ...]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one message per finding, as warned

    @property
    def skipped(self) -> bool:
        return bool(self.bad_lines)


def read_run_file(
    path: str | Path,
    runs: Collection[str],
    total_steps: int,
    warning: type[Warning] = CollectWarning,
) -> tuple[list[Record], FileReport]:
    """The usable records of one run's file (``runs``: the names its records may carry, i.e. the run's id
    and, for a directory an earlier version made, that directory's name) and what was wrong with it."""
    path = Path(path)
    rep = FileReport(path)
    if not path.exists():
        rep.missing = True
        return [], rep
    good, bad, truncated = read_lines(path)
    last = max([i for i, _ in good] + [i for i, _ in bad], default=0)
    if truncated and bad and bad[-1][0] == last:
        rep.truncated_line, why = bad.pop()
        _say(
            rep, warning, f"last line {rep.truncated_line} is truncated ({why}); dropped it, using the others"
        )
    for i, r in good:
        if r.run not in runs:
            bad.append((i, f"record of run {r.run!r} in {sorted(runs)[0]}'s file"))
        elif not 0 <= r.step <= total_steps:
            bad.append((i, f"step {r.step} outside 0..{total_steps}"))
    if bad:
        rep.bad_lines = sorted(bad)
        lines = "; ".join(f"line {n}: {why}" for n, why in rep.bad_lines[:10])
        more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
        _say(rep, warning, f"{len(bad)} bad line(s), skipping the whole file: {lines}{more}")
        return [], rep
    rep.nonfinite = [(i, r) for i, r in good if not r.finite]
    if rep.nonfinite:
        n, first = rep.nonfinite[0]
        name = next(k for k, v in first.values.items() if not math.isfinite(v))
        _say(
            rep,
            warning,
            f"{len(rep.nonfinite)} record(s) with a non-finite {name}, kept out of the table (the run "
            f"diverged); first: line {n}, step {first.step}, {describe(first)} {name} {first.values[name]}",
        )
    seen: set[tuple[Any, ...]] = set()
    dup = []
    for i, r in good:
        if r.key in seen:
            dup.append(((i, r.key), r))
        seen.add(r.key)
    rep.duplicates = [d for d, _ in dup]
    if rep.duplicates:
        keys = "; ".join(f"line {i}: run {k[1]} step {k[2]}, {describe(r)}" for (i, k), r in dup[:3])
        rep.problems.append(f"{path}: {len(rep.duplicates)} record(s) repeat an earlier key: {keys}")
    return [r for _, r in good if r.finite], rep


def refuse_duplicates(reports: list[FileReport]) -> None:
    """Raise ``DuplicateRecordsError`` naming every file with a repeated record key (nothing is written)."""
    dup = [r for r in reports if r.duplicates]
    if dup:
        raise DuplicateRecordsError(
            " ".join(p for r in dup for p in r.problems if "repeat an earlier key" in p)
            + " A run wrote the same record twice: inspect its file."
        )


def describe(r: Record) -> str:
    """A record in a message: its kind, pair (or "train") and labels."""
    labels = "".join(f" {k}={v}" for k, v in sorted(r.labels.items()))
    return f"{r.kind} {'/'.join(r.pair) if r.pair else 'train'}{labels}"


def _say(rep: FileReport, warning: type[Warning], msg: str) -> None:
    msg = f"{rep.path}: {msg}"
    rep.problems.append(msg)
    warnings.warn(msg, warning, stacklevel=3)
