"""The loss-record schema: typed, long-format, append-only JSONL records written by training runs.

Fitting and plotting read only these files (collected into one table), never trainer objects.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from florenz_scaling.files import storage_error, write_atomic

LOSSES_FILE = "losses.jsonl"
DONE_FILE = "DONE"


KINDS = ("eval", "train", "shuffled", "shuffled_image", "shuffled_prompt")
SHUFFLED_KINDS = ("shuffled", "shuffled_image", "shuffled_prompt")


@dataclass(frozen=True)
class LossRecord:
    """Held-out loss of one (task, language) pair, or a training-loss record (task = lang = group = '').

    ``kind="shuffled_image"`` / ``"shuffled_prompt"``: the same pair's held-out loss with every sample's
    image, or its prompt, taken from another sample (written at a run's final step); ``"shuffled"`` (older
    sweeps): both taken at once. The gap to ``eval`` shows whether the model uses that input at all, or
    only models the target language.
    """

    run_id: str
    step: int
    seen_samples: int
    kind: Literal["eval", "train", "shuffled", "shuffled_image", "shuffled_prompt"]
    task: str
    lang: str
    group: str
    loss: float
    samples: int
    tokens: int
    lr: float | None = None
    samples_per_s: float | None = None
    time: float | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LossRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [
            f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING and f.name not in d
        ]
        if missing:
            raise ValueError(f"record lacks {', '.join(missing)}")
        rec = cls(**{k: v for k, v in d.items() if k in names})
        if rec.kind not in KINDS:
            raise ValueError(f"unknown kind {rec.kind!r}")
        number = isinstance(rec.loss, (int, float)) and not isinstance(rec.loss, bool)
        if not number or not isinstance(rec.step, int):
            raise ValueError("loss must be a number and step an integer")
        return rec

    @property
    def finite(self) -> bool:
        """False for a NaN or infinite loss: a diverged evaluation, never a measurement to fit."""
        return math.isfinite(self.loss)


class RecordWriter:
    """Appends records to a JSONL file, one flushed and fsynced line per record."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run

    def write(self, records: list[LossRecord]) -> None:
        if not records:
            return
        try:
            self._fh.write("".join(r.to_json() + "\n" for r in records))
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as e:
            raise storage_error(e, self.path) from e

    def close(self) -> None:
        self._fh.close()


@dataclass(frozen=True)
class ReadReport:
    records: list[LossRecord]  # well-formed records with finite losses
    bad_lines: list[tuple[int, str]]  # (1-based line number, reason)
    truncated: bool  # last line had no newline: a writer was killed mid-line
    # Well-formed records whose loss is NaN or ±Infinity (json reads those bare tokens): kept out of
    # ``records`` so no mean or fit sees them, but reported, because they mean the run diverged.
    nonfinite: list[tuple[int, LossRecord]] = dataclasses.field(default_factory=list)


def read_records(path: str | Path) -> ReadReport:
    """Read a losses.jsonl file; malformed lines are reported, never silently used."""
    records: list[LossRecord] = []
    bad: list[tuple[int, str]] = []
    nonfinite: list[tuple[int, LossRecord]] = []
    raw = Path(path).read_bytes()
    truncated = bool(raw) and not raw.endswith(b"\n")
    for i, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = LossRecord.from_dict(json.loads(line))
        except (ValueError, TypeError, UnicodeDecodeError) as e:
            bad.append((i, f"{type(e).__name__}: {e}"))
            continue
        if rec.finite:
            records.append(rec)
        else:
            nonfinite.append((i, rec))
    return ReadReport(records, bad, truncated, nonfinite)


def truncate_after_step(path: str | Path, step: int) -> int:
    """Drop records written after ``step`` (and any half-written last line); returns how many were dropped.

    A resumed run calls this with its checkpoint's step, so records between that checkpoint and a crash are
    rewritten exactly once, never duplicated.
    """
    path = Path(path)
    if not path.exists():
        return 0
    keep, dropped = [], 0
    for line in path.read_bytes().split(b"\n"):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            if d["step"] <= step:
                keep.append(line)
                continue
        except (ValueError, KeyError, TypeError):
            pass
        dropped += 1
    write_atomic(path, b"".join(line + b"\n" for line in keep))
    return dropped
