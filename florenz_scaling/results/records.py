"""The one record contract between training and analysis: typed, long-format, append-only JSONL.

Every line a run writes (``losses.jsonl``: training and held-out losses and the conditioning probes;
``metrics.jsonl``: scores of decoded held-out samples) is one ``Record``::

    {"kind": "eval", "run": "T-0.5M-s250-…", "step": 250, "pair": ["caption", "en"],
     "values": {"loss": 3.1, "samples": 64, "tokens": 910, "seen_samples": 4000}, "labels": {"group": "SC"}}

``kind`` says what was measured (``KINDS``), ``pair`` on which (task, language) pair (null for training
loss), ``values`` holds its numbers and ``labels`` the strings that tell records of one kind apart (a metric's
name and decoding) or say how the writer reported it (its group; analysis regroups from the spec). One
writer (``RecordWriter``) writes all of them; one parser (``parse_line``) reads them, and the lines of
sweeps from before the contract (flat ``LossRecord`` and metric dicts) too. ``LossRecord`` and
``MetricRecord`` are typed views of a record for the code that needs their fields.
Fitting and plotting read only these files (collected into tables), never trainer objects.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from florenz_scaling.files import storage_error, write_atomic

LOSSES_FILE = "losses.jsonl"
DONE_FILE = "DONE"

LOSS_KINDS = ("eval", "train", "shuffled", "shuffled_image", "shuffled_prompt")
# "sample": one decoded held-out sample's own scores (per-sample numbers of a metric record's set), written
# beside the metric records so intervals and paired differences can be recomputed from the samples.
KINDS = (*LOSS_KINDS, "metric", "sample")
SHUFFLED_KINDS = ("shuffled", "shuffled_image", "shuffled_prompt")


@dataclass(frozen=True)
class Record:
    """One measurement of one run at one step (see the module docstring for the JSON form)."""

    kind: str
    run: str
    step: int
    pair: tuple[str, str] | None
    values: dict[str, float]
    labels: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        d = {"kind": self.kind, "run": self.run, "step": self.step, "values": self.values}
        d["pair"] = list(self.pair) if self.pair else None
        if self.labels:
            d["labels"] = self.labels
        return json.dumps(d, sort_keys=True, ensure_ascii=False)

    @property
    def key(self) -> tuple[Any, ...]:
        """What makes a record unique in its file: a second record with the same key is a writer's bug."""
        return (self.kind, self.run, self.step, self.pair, tuple(sorted(self.labels.items())))

    @property
    def finite(self) -> bool:
        """False when a value is NaN or infinite: a diverged measurement, never one to fit."""
        return all(math.isfinite(v) for v in self.values.values())


@dataclass(frozen=True)
class LossRecord:
    """Typed view of a loss record: held-out loss of one (task, language) pair, or training loss
    (task = lang = group = ''). ``kind="shuffled_image"`` / ``"shuffled_prompt"``: the pair's loss with every
    sample's image, or prompt, taken from another sample (``"shuffled"``, older sweeps: both at once)."""

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
    loss_sd: float | None = None  # held-out records: standard deviation of the per-sample losses

    def to_record(self) -> Record:
        optional = {
            k: getattr(self, k)
            for k in ("lr", "samples_per_s", "time", "loss_sd")
            if getattr(self, k) is not None
        }
        values = {"loss": self.loss, "samples": self.samples, "tokens": self.tokens}
        values |= {"seen_samples": self.seen_samples, **optional}
        pair = (self.task, self.lang) if self.task else None
        return Record(
            self.kind, self.run_id, self.step, pair, values, {"group": self.group} if self.group else {}
        )

    def to_json(self) -> str:
        return self.to_record().to_json()

    @classmethod
    def of(cls, r: Record) -> LossRecord:
        v = r.values
        task, lang = r.pair or ("", "")
        return cls(
            r.run, r.step, int(v.get("seen_samples", 0)), r.kind, task, lang, r.labels.get("group", ""),  # type: ignore[arg-type]
            v["loss"], int(v.get("samples", 0)), int(v.get("tokens", 0)),
            v.get("lr"), v.get("samples_per_s"), v.get("time"), v.get("loss_sd"),
        )  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LossRecord:
        """A loss line (the contract's or an older flat one), typed; ``ValueError`` if it is not one."""
        rec = parse_dict(d)
        if rec.kind not in LOSS_KINDS:
            raise ValueError(f"a {rec.kind} record is not a loss record")
        return cls.of(rec)

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss)


def sample_record(
    run: str, step: int, pair: tuple[str, str], decoding: str, index: int, scores: dict[str, float]
) -> Record:
    """One decoded held-out sample's scores (its position ``index`` in the pair's held-out set): the
    numbers whose (weighted) means are the set's share metrics, and its CIDEr under the set's IDF."""
    values = {"index": index, **{k: float(v) for k, v in scores.items()}}
    return Record("sample", run, step, pair, values, {"decoding": decoding, "sample": str(index)})


@dataclass(frozen=True)
class MetricRecord:
    """Typed view of a metric record: one score of one run's decoded held-out samples of one pair."""

    run_id: str
    step: int
    seen_samples: int
    task: str
    lang: str
    group: str  # "" for a training pair no group lists
    metric: str  # bleu, chrf, cider, exact_match, attr_acc, attr_shape, ...
    decoding: str  # greedy, beam4, greedy+prefix, beam4+prefix, ...
    value: float
    n: int  # samples the score is over
    # The bootstrap interval of ``value`` over the n held-out samples (train.intervals; None: not recorded).
    lower: float | None = None
    upper: float | None = None

    def to_record(self) -> Record:
        labels = {"metric": self.metric, "decoding": self.decoding} | (
            {"group": self.group} if self.group else {}
        )
        values = {"value": self.value, "n": self.n, "seen_samples": self.seen_samples}
        values |= {k: getattr(self, k) for k in ("lower", "upper") if getattr(self, k) is not None}
        return Record("metric", self.run_id, self.step, (self.task, self.lang), values, labels)

    @classmethod
    def of(cls, r: Record) -> MetricRecord:
        task, lang = r.pair or ("", "")
        lb, v = r.labels, r.values
        return cls(
            r.run, r.step, int(v.get("seen_samples", 0)), task, lang, lb.get("group", ""),
            lb.get("metric", ""), lb.get("decoding", ""), v["value"], int(v.get("n", 0)),
            v.get("lower"), v.get("upper"),
        )  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MetricRecord:
        """A metric line (the contract's or an older flat one), typed; ``ValueError`` if it is not one."""
        rec = parse_dict(d)
        if rec.kind != "metric":
            raise ValueError(f"a {rec.kind} record is not a metric record")
        return cls.of(rec)


def as_record(r: Record | LossRecord | MetricRecord) -> Record:
    return r if isinstance(r, Record) else r.to_record()


def parse_line(line: bytes | str) -> Record:
    """One JSON line as a ``Record``: the contract, or a flat loss or metric line of an older sweep.
    Raises ``ValueError`` (naming what is wrong) for anything else."""
    return parse_dict(json.loads(line))


def parse_dict(d: Any) -> Record:
    """A decoded JSON line as a ``Record`` (see ``parse_line``)."""
    if not isinstance(d, dict):
        raise ValueError("not a JSON object")
    if "values" not in d:
        d = _old_line(d)
    missing = [k for k in ("kind", "run", "step", "values") if k not in d]
    if missing:
        raise ValueError(f"record lacks {', '.join(missing)}")
    kind, run, step, values, pair = d["kind"], d["run"], d["step"], d["values"], d.get("pair")
    labels = d.get("labels") or {}
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    if not isinstance(run, str) or not _is_int(step):
        raise ValueError("run must be a string and step an integer")
    if not isinstance(values, dict) or not values or not all(_is_number(x) for x in values.values()):
        raise ValueError("values must be a non-empty object of numbers")
    if pair is not None and not (
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
    ):
        raise ValueError("pair must be [task, language] or null")
    if not isinstance(labels, dict) or not all(isinstance(x, str) for x in labels.values()):
        raise ValueError("labels must be an object of strings")
    need = {"metric": ("value",), "sample": ("index",), "train": ("loss",)}.get(kind, ("loss",))
    if any(n not in values for n in need):
        raise ValueError(f"a {kind} record needs values {', '.join(need)}")
    return Record(kind, run, step, tuple(pair) if pair else None, dict(values), dict(labels))  # type: ignore[arg-type]


def _old_line(d: dict[str, Any]) -> dict[str, Any]:
    """A flat line of a sweep from before the contract, in the contract's shape (its checks follow)."""
    if "metric" in d:
        names = {f.name for f in dataclasses.fields(MetricRecord) if f.default is dataclasses.MISSING}
        missing = sorted(names - set(d))
        if missing:
            raise ValueError(f"record lacks {', '.join(missing)}")
        if not all(isinstance(d[k], str) for k in ("task", "lang", "group", "metric", "decoding")):
            raise ValueError("metric record keys must be strings")
        return {
            "kind": "metric", "run": d["run_id"], "step": d["step"], "pair": [d["task"], d["lang"]],
            "values": {"value": d["value"], "n": d["n"], "seen_samples": d["seen_samples"]},
            "labels": {"metric": d["metric"], "decoding": d["decoding"]} | _group(d["group"]),
        }  # fmt: skip
    required = [f.name for f in dataclasses.fields(LossRecord) if f.default is dataclasses.MISSING]
    missing = [k for k in required if k not in d]
    if missing:
        raise ValueError(f"record lacks {', '.join(missing)}")
    numbers = {
        k: d.get(k) for k in ("loss", "samples", "tokens", "seen_samples", "lr", "samples_per_s", "time")
    }
    return {
        "kind": d["kind"], "run": d["run_id"], "step": d["step"],
        "pair": [d["task"], d["lang"]] if d["task"] else None,
        "values": {k: v for k, v in numbers.items() if v is not None},
        "labels": _group(d["group"]),
    }  # fmt: skip


def _group(group: Any) -> dict[str, Any]:
    return {"group": group} if group else {}


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def append_jsonl(path: str | Path, rows: list[dict[str, Any]] | list[str]) -> None:
    """Append JSON lines (dicts, or lines already serialised), flushed and fsynced: the one durable append
    every record file and examples.jsonl use."""
    if not rows:
        return
    path = Path(path)
    lines = [r if isinstance(r, str) else json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows]
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as e:
        raise storage_error(e, path) from e


class RecordWriter:
    """Appends records (of any kind) to a JSONL file in the contract's form, one durable line each."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, records: list[Record] | list[LossRecord] | list[MetricRecord]) -> None:
        append_jsonl(self.path, [as_record(r).to_json() for r in records])

    def close(self) -> None:
        """Nothing is held open between writes (each append opens, fsyncs and closes the file)."""


@dataclass(frozen=True)
class ReadReport:
    records: list[LossRecord]  # well-formed loss records with finite losses
    bad_lines: list[tuple[int, str]]  # (1-based line number, reason)
    truncated: bool  # last line had no newline: a writer was killed mid-line
    # Well-formed records whose loss is NaN or ±Infinity (json reads those bare tokens): kept out of
    # ``records`` so no mean or fit sees them, but reported, because they mean the run diverged.
    nonfinite: list[tuple[int, LossRecord]] = dataclasses.field(default_factory=list)


def read_lines(path: str | Path) -> tuple[list[tuple[int, Record]], list[tuple[int, str]], bool]:
    """Every parsable line of a record file as (line number, record), every other as (line number, why),
    and whether the last line is unterminated (a writer killed mid-line)."""
    raw = Path(path).read_bytes()
    good, bad = [], []
    for i, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            good.append((i, parse_line(line)))
        except (ValueError, TypeError, UnicodeDecodeError) as e:
            bad.append((i, f"{type(e).__name__}: {e}"))
    return good, bad, bool(raw) and not raw.endswith(b"\n")


def read_records(path: str | Path) -> ReadReport:
    """A losses.jsonl file as typed loss records; malformed lines are reported, never silently used."""
    good, bad, truncated = read_lines(path)
    bad += [(i, f"a {r.kind} record in a losses file") for i, r in good if r.kind not in LOSS_KINDS]
    loss = [(i, LossRecord.of(r)) for i, r in good if r.kind in LOSS_KINDS]
    bad.sort()
    return ReadReport(
        [r for _, r in loss if r.finite], bad, truncated, [(i, r) for i, r in loss if not r.finite]
    )


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
