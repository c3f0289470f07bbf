"""Run identity is one rule: a hash of the spec values that differ from their defaults and determine training.

A field added with a default changes no id; analysis settings (reporting groups, the sweep's name, wandb)
change none either; which pairs are trained and held out does. Directories made under the previous rule
(``tests/data/old_sweeps``, recorded at commit 3049e31) are recognised: they resume, collect and relaunch
nothing that is done.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from tiny_sweeps import TINY_DEMO

from florenz_scaling.launch.submit import launch
from florenz_scaling.plan import make_plan, read_plan, write_plan
from florenz_scaling.spec import DataSpec, GenerateSpec, Pretrained, RunSpec, TrainSpec, load_sweep
from florenz_scaling.spec.identity import identity
from florenz_scaling.spec.old_runs import current_ids

REPO = Path(__file__).resolve().parents[1]
OLD = REPO / "tests" / "data" / "old_sweeps"
TRIVIAL = "florenz_doubles:sleep_run"
SWEEPS = ("demo.yaml", "florenz_paper.yaml", "budget_example.yaml")


def _plans() -> list[list[RunSpec]]:
    return [[r.run for r in make_plan(load_sweep(REPO / "sweeps" / s))] for s in SWEEPS]


def _with_new_field(cls: type, name: str, tp: object, default: object) -> type:
    """``cls`` as another engineer would extend it: one more field with a default."""
    return dataclasses.make_dataclass(cls.__name__, [(name, tp, default)], bases=(cls,), frozen=True)


def _rebuilt(run: RunSpec, section: str, cls: type, **extra: object) -> RunSpec:
    old = getattr(run, section)
    new = cls(**{f.name: getattr(old, f.name) for f in dataclasses.fields(old)}, **extra)
    return dataclasses.replace(run, **{section: new})


@pytest.mark.parametrize(
    ("section", "base", "name", "tp", "default", "changed"),
    [
        ("train", TrainSpec, "new_knob", int, 3, 4),
        ("data", DataSpec, "prompt_style", str | None, None, "/models/florence2-prompts"),
    ],
)
def test_a_field_added_with_a_default_changes_no_run_id(section, base, name, tp, default, changed) -> None:
    extended = _with_new_field(base, name, tp, default)
    for runs in _plans():
        ids = [r.run_id for r in runs]
        assert [_rebuilt(r, section, extended).run_id for r in runs] == ids
        # ... and set to anything else it is part of the identity (the check can fail).
        assert not set(ids) & {_rebuilt(r, section, extended, **{name: changed}).run_id for r in runs}


def test_every_section_at_its_defaults_adds_nothing() -> None:
    # So a field another engineer adds with a default (e.g. data.encoder_tokenizer) never changes an id.
    for section in (TrainSpec(), DataSpec(), GenerateSpec(), Pretrained()):
        assert identity(section) == {}, section


def test_analysis_settings_change_no_run_id_and_trained_or_held_out_pairs_do() -> None:
    demo = TINY_DEMO
    ids = [r.run_id for r in make_plan(load_sweep(demo))]
    same = [
        # The paper's three groups regrouped: same held-out pairs, other names and averages.
        "data.groups={seen: [[caption, en], [caption, de], [translate, es], [translate, zh]], "
        "unseen: [[caption, zh], [caption, es]]}",
        "name=renamed",
        "wandb.mode=disabled",
        "wandb.project=elsewhere",
        "fit.laws=[compute]",
        "fit.bootstrap=7",
        "train.lr=0.001",  # the demo's own value, written differently
    ]
    for o in same:
        assert [r.run_id for r in make_plan(load_sweep(demo, [o]))] == ids, o
    other = [
        "data.groups={SC: [[caption, en], [caption, de]], UC: [[caption, es], [caption, zh], [caption, fr]], "
        "ST: [[translate, es], [translate, zh]]}",  # one more held-out pair
        "data.caption_languages=[en]",  # one training pair fewer
        "generate.beam=2",
        "seed=1",
    ]
    for o in other:
        assert not set(ids) & {r.run_id for r in make_plan(load_sweep(demo, [o]))}, o


def test_identity_is_the_non_default_values_only() -> None:
    run = make_plan(load_sweep(TINY_DEMO, ["grid.steps=[250]", "sizes=[T-0.5M]"]))[0].run
    ident = identity(run)
    assert "sweep" not in ident and "wandb" not in ident
    assert set(ident) == {"size", "steps", "global_batch", "train", "data"}  # seed, generate, ...: defaults
    assert ident["train"] == {
        "lr": 0.001,
        "warmup_steps": 50,
        "micro_batch": 16,
        "precision": "fp32",
        "eval_every": 250,
        "threads": 1,
    }
    assert ident["data"] == {"decoder_prefix": True}


def test_regrouping_retrains_nothing(tmp_path: Path) -> None:
    demo = TINY_DEMO
    small = ["grid.steps=[4,8]", "sizes=[T-0.2M]", "components=null", "launch.executor=debug"]
    spec = load_sweep(demo, small)
    plan = make_plan(spec)
    write_plan(spec, plan, tmp_path)
    assert len(launch(spec, tmp_path, plan, entry=TRIVIAL).submitted) == 2
    regrouped = load_sweep(
        demo,
        [
            *small,
            "data.groups={all: [[caption, en], [caption, de], [caption, es], "
            "[caption, zh], [translate, es], [translate, zh]]}",
        ],
    )
    plan2 = make_plan(regrouped)
    write_plan(regrouped, plan2, tmp_path)
    again = launch(regrouped, tmp_path, plan2, entry=TRIVIAL)
    assert again.submitted == [] and set(again.skipped.values()) == {"done"}


def _old(tmp_path: Path, name: str) -> Path:
    out = tmp_path / name
    shutil.copytree(OLD / name, out)
    return out


def test_old_wsd_directory_is_recognised_parents_first(tmp_path: Path) -> None:
    out = _old(tmp_path, "wsd")
    old_ids = [r["run_id"] for r in read_plan(out)]
    spec = load_sweep(out / "sweep.yaml")
    plan = make_plan(spec)
    # Every old directory maps to a run of today's plan, branch and trunk segments alike (a run's start_from
    # names its parent by the old id, translated before hashing).
    assert current_ids(out / "runs") == dict(zip(old_ids, [r.run_id for r in plan], strict=True))
    write_plan(spec, plan, out)
    res = launch(spec, out, plan, executor="debug", entry=TRIVIAL)
    done = {plan[0].run_id, plan[1].run_id}  # the trunk's first segment and its branch, done before
    assert {rid for rid, _ in res.submitted} == {r.run_id for r in plan} - done
    assert {res.skipped[rid] for rid in done} == {"done"}
    for r in plan:  # each ran in its old directory, through a link named by its id now
        assert (out / "runs" / r.run_id).is_symlink() and (out / "runs" / r.run_id / "DONE").exists()


def test_old_cosine_directory_collects_as_it_is_then_resumes_and_collects_again(tmp_path: Path) -> None:
    from florenz_scaling.results import collect, collect_metrics

    out = _old(tmp_path, "cosine")
    done_old, pending_old = (r["run_id"] for r in read_plan(out))
    before = collect(out)  # before anything is relaunched: the old plan.csv and old ids
    assert set(before["run_id"]) == {done_old} and not before.attrs["problems"]

    spec = load_sweep(out / "sweep.yaml")
    plan = make_plan(spec)
    done_new, pending_new = (r.run_id for r in plan)
    assert {done_new, pending_new}.isdisjoint({done_old, pending_old})  # ids changed by construction
    write_plan(spec, plan, out)
    res = launch(spec, out, plan, executor="debug")  # the real trainer: the pending run trains here
    assert [rid for rid, _ in res.submitted] == [pending_new] and res.skipped == {done_new: "done"}
    assert (out / "runs" / pending_old / "DONE").exists()  # trained in its old directory

    after = collect(out)
    assert set(after["run_id"]) == {done_new, pending_new} and not after.attrs["problems"]
    old_rows = after[after["run_id"] == done_new].drop(columns="run_id").reset_index(drop=True)
    assert old_rows.equals(before.drop(columns="run_id").reset_index(drop=True))  # the done run's records
    rows, report = collect_metrics(out)
    assert {r["run_id"] for r in rows} == {done_new, pending_new} and not report.problems
