"""One record contract and one reader: losses and metrics are damaged alike and reported alike."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import warnings
from pathlib import Path

import pytest

from florenz_scaling.results.metrics import read_metrics
from florenz_scaling.results.reader import CollectWarning, FileReport, read_run_file
from florenz_scaling.results.records import (
    LossRecord,
    MetricRecord,
    Record,
    RecordWriter,
    parse_line,
    read_records,
)

RUN = "T-0.2M-s8-0123456789"


def _loss(step: int, lang: str = "en", loss: float = 2.5) -> Record:
    values = {"loss": loss, "samples": 4, "tokens": 40, "seen_samples": 4 * step}
    return Record("eval", RUN, step, ("caption", lang), values, {"group": "SC"})


def _metric(step: int, lang: str = "en", value: float = 12.5) -> Record:
    values = {"value": value, "n": 4, "seen_samples": 4 * step}
    return Record("metric", RUN, step, ("caption", lang), values, {"metric": "bleu", "decoding": "greedy"})


# Each damage as (name, the file's lines built from a record maker, whether the text ends with a newline).
DAMAGE = {
    "clean": (lambda mk: [mk(2), mk(4)], True),
    "truncated last line": (lambda mk: [mk(2), mk(4), mk(6).to_json()[:25]], False),
    "garbage line": (lambda mk: [mk(2), "{not json", mk(4)], True),
    "nan": (lambda mk: [mk(2), mk(4, True), mk(6)], True),
    "duplicate step": (lambda mk: [mk(2), mk(4), mk(4)], True),
}


def _write(path: Path, maker, damage: str) -> None:
    build, newline = DAMAGE[damage]

    def mk(step: int, value_nan: bool = False) -> Record:
        record = maker(step)
        name = next(iter(record.values))  # loss or value
        return Record(
            *[getattr(record, f) for f in ("kind", "run", "step", "pair")],
            {**record.values, name: math.nan} if value_nan else record.values,
            record.labels,
        )

    lines = [x if isinstance(x, str) else x.to_json() for x in build(mk)]
    path.write_text("\n".join(lines) + ("\n" if newline else ""))


def _shape(rep: FileReport, path: Path, name: str) -> dict:
    """What a report says, with the file's path and the value's name (loss / value) taken out."""
    return {
        "missing": rep.missing,
        "truncated_line": rep.truncated_line,
        "bad_lines": [n for n, _ in rep.bad_lines],
        "nonfinite": [n for n, _ in rep.nonfinite],
        "duplicates": [(n, k[2]) for n, k in rep.duplicates],
        "skipped": rep.skipped,
        "problems": [_normal(p, path, name) for p in rep.problems],
    }


def _normal(problem: str, path: Path, name: str) -> str:
    """A message without what legitimately differs: the path, the value's name, the record's kind and
    labels, and the JSON parser's wording for a cut line."""
    for record in ("eval caption/en group=SC", "metric caption/en decoding=greedy metric=bleu"):
        problem = problem.replace(record, "RECORD")
    problem = re.sub(r"truncated \(.*\); dropped", "truncated (…); dropped", problem)
    return problem.replace(str(path), "FILE").replace(f" {name}", " NAME")


@pytest.mark.parametrize("damage", [*DAMAGE, "missing file"])
def test_losses_and_metrics_damaged_alike_are_reported_alike(tmp_path: Path, damage: str) -> None:
    shapes, kept = [], []
    for maker, name, file in ((_loss, "loss", "losses.jsonl"), (_metric, "value", "metrics.jsonl")):
        path = tmp_path / file
        if damage != "missing file":
            _write(path, maker, damage)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CollectWarning)
            records, rep = read_run_file(path, {RUN}, total_steps=8)
        shapes.append(_shape(rep, path, name))
        kept.append([r.step for r in records])
    assert shapes[0] == shapes[1]
    assert kept[0] == kept[1]
    expected = {
        "clean": ({}, [2, 4]),
        "truncated last line": ({"truncated_line": 3}, [2, 4]),
        "garbage line": ({"bad_lines": [2], "skipped": True}, []),
        "nan": ({"nonfinite": [2]}, [2, 6]),
        "duplicate step": ({"duplicates": [(3, 4)]}, [2, 4, 4]),
        "missing file": ({"missing": True}, []),
    }[damage]
    for field_name, value in expected[0].items():
        assert shapes[0][field_name] == value, field_name
    assert kept[0] == expected[1]
    assert bool(shapes[0]["problems"]) == (damage not in ("clean", "missing file"))


def test_a_record_from_another_run_or_past_the_end_skips_the_file(tmp_path: Path) -> None:
    path = tmp_path / "losses.jsonl"
    other = Record("eval", "someone-else", 2, ("caption", "en"), {"loss": 1.0})
    path.write_text("\n".join(r.to_json() for r in (_loss(2), other, _loss(10))) + "\n")
    with pytest.warns(CollectWarning, match="someone-else.*line 3: step 10 outside 0..8"):
        records, rep = read_run_file(path, {RUN}, total_steps=8)
    assert records == [] and rep.skipped and [n for n, _ in rep.bad_lines] == [2, 3]


def test_the_one_writer_writes_the_contract_and_old_lines_still_read(tmp_path: Path) -> None:
    loss = LossRecord(RUN, 4, 16, "eval", "caption", "de", "SC", 2.25, 4, 40)
    train = LossRecord(RUN, 4, 16, "train", "", "", "", 3.5, 4, 40, lr=1e-3, samples_per_s=9.0, time=1.5)
    metric = MetricRecord(RUN, 4, 16, "caption", "de", "SC", "chrf", "beam4", 41.0, 4)
    RecordWriter(tmp_path / "losses.jsonl").write([loss, train])
    RecordWriter(tmp_path / "metrics.jsonl").write([metric])
    lines = [json.loads(x) for x in (tmp_path / "losses.jsonl").read_text().splitlines()]
    assert lines[0] == {
        "kind": "eval",
        "run": RUN,
        "step": 4,
        "pair": ["caption", "de"],
        "values": {"loss": 2.25, "samples": 4, "tokens": 40, "seen_samples": 16},
        "labels": {"group": "SC"},
    }
    assert lines[1]["pair"] is None and "labels" not in lines[1]
    spread = dataclasses.replace(loss, loss_sd=0.5)  # optional: written only when there is one
    assert (
        LossRecord.from_dict(json.loads(spread.to_json())) == spread and "loss_sd" not in lines[0]["values"]
    )
    assert read_records(tmp_path / "losses.jsonl").records == [loss, train]
    assert read_metrics(tmp_path / "metrics.jsonl").records == [metric]
    # Lines of a sweep from before the contract (flat dicts) read as the same records.
    old_loss = {**{k: getattr(loss, k) for k in loss.__dataclass_fields__}}
    old_metric = {**{k: getattr(metric, k) for k in metric.__dataclass_fields__}}
    assert LossRecord.of(parse_line(json.dumps(old_loss))) == loss
    assert MetricRecord.of(parse_line(json.dumps(old_metric))) == metric
    for bad in ({**old_loss, "loss": "low"}, {**old_metric, "n": True}, {"kind": "eval", "run": RUN}):
        with pytest.raises(ValueError):
            parse_line(json.dumps(bad))
