"""collect: the long table's columns and derived values, and the rule for damaged record files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
from tiny_sweeps import TINY_DEMO

from florenz_scaling.cli import main as cli_main
from florenz_scaling.plan import make_plan, write_plan
from florenz_scaling.results import TABLE_COLUMNS, CollectWarning, DuplicateRecordsError, collect
from florenz_scaling.spec import load_sweep
from florenz_scaling.spec.sizes import compute_gmacs

PAIRS = (("caption", "en", "SC"), ("caption", "es", "UC"), ("translate", "zh", "ST"), ("translate", "fr", ""))


def _records(run_id: str, steps: list[int], gb: int) -> list[str]:
    out = []
    for step in steps:
        out.append(
            json.dumps(
                dict(
                    run_id=run_id,
                    step=step,
                    seen_samples=step * gb,
                    kind="train",
                    task="",
                    lang="",
                    group="",
                    loss=3.0,
                    samples=gb,
                    tokens=100,
                )
            )
        )
        for i, (task, lang, group) in enumerate(PAIRS):
            out.append(
                json.dumps(
                    dict(
                        run_id=run_id,
                        step=step,
                        seen_samples=step * gb,
                        kind="eval",
                        task=task,
                        lang=lang,
                        group=group,
                        loss=5.0 - step / 10 + i,
                        samples=8,
                        tokens=90,
                    )
                )
            )
    return out


@pytest.fixture
def sweep(repo: Path, tmp_path: Path):
    spec = load_sweep(TINY_DEMO, ["grid.steps=[4,8]", "sizes=[T-0.2M,T-0.5M]"])
    plan = make_plan(spec)
    write_plan(spec, plan, tmp_path)
    for r in plan:
        d = tmp_path / "runs" / r.run_id
        d.mkdir(parents=True)
        steps = list(range(4, r.run.steps + 1, 4))
        (d / "losses.jsonl").write_text("\n".join(_records(r.run_id, steps, r.run.global_batch)) + "\n")
        (d / "DONE").write_text("{}\n")
    return tmp_path, plan


def test_table_columns_and_values(sweep) -> None:
    out, plan = sweep
    (out / "runs" / plan[0].run_id / "DONE").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollectWarning)
        table = collect(out)
    assert tuple(table.columns) == TABLE_COLUMNS
    assert len(table) == sum(r.run.steps // 4 for r in plan) * len(PAIRS)  # eval rows only
    for r in plan:
        sub = table[table.run_id == r.run_id]
        assert set(sub.step) == set(range(4, r.run.steps + 1, 4))
        row = sub[sub.step == r.run.steps].iloc[0]
        assert row.seen_samples == r.run.steps * r.run.global_batch
        assert row.compute_gmacs == pytest.approx(r.compute_gmacs)
        assert row.params == r.params and row.trainable_params == r.trainable_params
        assert bool(row.final) and bool(row.partial) == (r is plan[0])
        early = sub[sub.step == 4].iloc[0]
        assert early.compute_gmacs == pytest.approx(
            compute_gmacs(4 * 16, r.fwd_gmacs, r.params, r.trainable_params)
        )
        assert not bool(early.final) or r.run.steps == 4
    assert pd.read_parquet(out / "results.parquet").shape == table.shape
    assert pd.read_csv(out / "results.csv").shape == table.shape


def test_truncated_last_line_is_dropped_with_a_warning(sweep) -> None:
    out, plan = sweep
    f = out / "runs" / plan[1].run_id / "losses.jsonl"
    with open(f, "a") as fh:
        fh.write('{"run_id": "' + plan[1].run_id + '", "step": 8, "kind": "ev')
    with pytest.warns(CollectWarning, match=r"truncated"):
        table = collect(out)
    assert len(table[table.run_id == plan[1].run_id]) == (plan[1].run.steps // 4) * len(PAIRS)


def test_corrupt_file_is_skipped_and_reported(sweep) -> None:
    out, plan = sweep
    f = out / "runs" / plan[0].run_id / "losses.jsonl"
    lines = f.read_text().splitlines()
    lines[2] = "garbage{"
    lines[3] = json.dumps({"run_id": plan[0].run_id, "step": 4})  # missing fields
    f.write_text("\n".join(lines) + "\n")
    with pytest.warns(
        CollectWarning, match=r"losses\.jsonl: 2 bad line\(s\), skipping the whole file: line 3"
    ):
        table = collect(out)
    assert plan[0].run_id not in set(table.run_id)
    assert set(table.run_id) == {r.run_id for r in plan[1:]}
    assert any("line 4" in p for p in table.attrs["problems"])
    # The command reports it and does not fail.
    assert cli_main(["collect", str(out)]) == 0


def test_records_of_another_run_or_past_the_end_are_bad(sweep) -> None:
    out, plan = sweep
    f = out / "runs" / plan[0].run_id / "losses.jsonl"
    f.write_text(f.read_text() + "\n".join(_records("someone-else", [4], 16)) + "\n")
    with pytest.warns(CollectWarning, match="someone-else"):
        table = collect(out)
    assert plan[0].run_id not in set(table.run_id)


def test_duplicated_rows_are_an_error(sweep, capsys) -> None:
    out, plan = sweep
    f = out / "runs" / plan[2].run_id / "losses.jsonl"
    f.write_text(f.read_text() + "\n".join(_records(plan[2].run_id, [4], 16)) + "\n")
    with pytest.raises(DuplicateRecordsError, match=plan[2].run_id):
        collect(out)
    assert cli_main(["collect", str(out)]) == 1
    assert "repeat an earlier key" in capsys.readouterr().err


def test_runs_without_records(sweep) -> None:
    out, plan = sweep
    (out / "runs" / plan[0].run_id / "losses.jsonl").unlink()
    table = collect(out)
    assert table.attrs["runs_without_records"] == [plan[0].run_id]


def test_shuffled_records_go_to_conditioning_csv_not_the_results(sweep) -> None:
    from florenz_scaling.report import conditioning_table
    from florenz_scaling.results import CONDITIONING_COLUMNS

    out, plan = sweep
    before = collect(out)
    run = plan[-1]
    with open(out / "runs" / run.run_id / "losses.jsonl", "a") as fh:
        for i, (task, lang, group) in enumerate(PAIRS):
            fh.write(
                json.dumps(
                    dict(
                        run_id=run.run_id,
                        step=run.run.steps,
                        seen_samples=run.seen_samples,
                        kind="shuffled",
                        task=task,
                        lang=lang,
                        group=group,
                        loss=6.0 + i,
                        samples=8,
                        tokens=90,
                    )
                )
                + "\n"
            )
    table = collect(out)
    assert table.equals(before), "the long table holds kind=eval records only"
    cond = pd.read_csv(out / "conditioning.csv", keep_default_na=False)
    assert tuple(cond.columns) == CONDITIONING_COLUMNS and len(cond) == len(PAIRS)
    assert (cond["run_id"] == run.run_id).all() and (cond["step"] == run.run.steps).all()
    final = table[(table.run_id == run.run_id) & table.final].set_index(["task", "lang"])["loss"]
    for _, row in cond.iterrows():
        assert row["loss"] == pytest.approx(final[(row["task"], row["lang"])])
    gaps = conditioning_table(cond).set_index("group")["gap"]
    assert set(gaps.index) == {"SC", "UC", "ST"}  # the ungrouped pair is left out of the summary
    assert gaps["SC"] == pytest.approx(6.0 - final[("caption", "en")])


def _set_losses(path: Path, value: str, where) -> None:
    """Rewrite ``path`` with the loss of every record matching ``where(record)`` set to the bare token."""
    lines = []
    for line in path.read_text().splitlines():
        d = json.loads(line)
        if where(d):
            d["loss"] = 0.0
            line = json.dumps(d).replace('"loss": 0.0', f'"loss": {value}')
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_loss_is_reported_and_kept_out(sweep, token: str) -> None:
    out, plan = sweep
    run = plan[-1]
    path = out / "runs" / run.run_id / "losses.jsonl"
    _set_losses(
        path, token, lambda d: d["kind"] == "eval" and d["lang"] == "en" and d["step"] == run.run.steps
    )
    with pytest.warns(CollectWarning, match=rf"{path}: 1 record\(s\) with a non-finite loss.*line \d+"):
        table = collect(out)
    assert table["loss"].map(float).map(pd.notna).all() and (table["loss"].abs() < 1e300).all()
    mine = table[table["run_id"] == run.run_id]
    assert mine["diverged"].all() and not table.loc[table["run_id"] != run.run_id, "diverged"].any()
    final = mine[mine["step"] == run.run.steps]
    assert ("caption", "en") not in set(zip(final["task"], final["lang"], strict=True))
    assert len(final) == len(PAIRS) - 1  # the other pairs of the file are still used
    assert table.attrs["diverged"] == {run.run_id: run.run.steps}


def test_group_means_skip_no_pair_silently(sweep) -> None:
    from florenz_scaling.results import group_losses

    out, plan = sweep
    run = plan[-1]
    path = out / "runs" / run.run_id / "losses.jsonl"
    _set_losses(
        path, "NaN", lambda d: d["kind"] == "eval" and d["group"] == "SC" and d["step"] == run.run.steps
    )
    with pytest.warns(CollectWarning):
        table = collect(out)
    groups = group_losses(table)
    final = groups[(groups["run_id"] == run.run_id) & (groups["step"] == run.run.steps)]
    assert "SC" not in set(final["group"]) and {"UC", "ST"} <= set(final["group"])
    assert {"run_id": run.run_id, "step": run.run.steps, "group": "SC", "missing": ["caption/en"]} in (
        groups.attrs["incomplete"]
    )
    assert len(groups.attrs["incomplete"]) == 1  # every other (run, step, group) has all its pairs
    assert len(groups) == len(table.groupby(["run_id", "step", "group"]))


def test_an_all_nan_run_has_no_final_rows_never_loss_zero(sweep) -> None:
    out, plan = sweep
    run = plan[-1]
    path = out / "runs" / run.run_id / "losses.jsonl"
    _set_losses(path, "NaN", lambda d: d["step"] == run.run.steps)
    with pytest.warns(CollectWarning, match="non-finite"):
        table = collect(out)
    mine = table[table["run_id"] == run.run_id]
    assert not (mine["step"] == run.run.steps).any()
    assert (table["loss"] > 0).all()


def test_regrouping_a_collected_sweep_recollects_under_the_new_groups_and_retrains_nothing(
    sweep, repo: Path
) -> None:
    from florenz_scaling.launch.submit import launch
    from florenz_scaling.results import read_table

    out, plan = sweep
    assert set(read_table_after(out)["group"]) == {"SC", "UC", "ST", ""}
    # Same held-out pairs (a new one would be a new run), other names, caption/en in two groups.
    regrouped = load_sweep(
        TINY_DEMO,
        [
            "grid.steps=[4,8]",
            "sizes=[T-0.2M,T-0.5M]",
            "data.groups={captions: [[caption, en], [caption, de], [caption, es], [caption, zh]], "
            "english: [[caption, en]], translations: [[translate, es], [translate, zh]]}",
        ],
    )
    plan2 = make_plan(regrouped)
    assert [r.run_id for r in plan2] == [r.run_id for r in plan]
    write_plan(regrouped, plan2, out)
    res = launch(regrouped, out, plan2, executor="debug", entry="florenz_doubles:sleep_run")
    assert res.submitted == [] and set(res.skipped.values()) == {"done"}

    assert cli_main(["collect", str(out)]) == 0
    table = read_table(out / "results.csv")
    pairs = {(t, lang): set(d["group"]) for (t, lang), d in table.groupby(["task", "lang"])}
    assert pairs == {
        ("caption", "en"): {"captions", "english"},
        ("caption", "es"): {"captions"},
        ("translate", "zh"): {"translations"},
        ("translate", "fr"): {""},  # a training pair no group lists
    }
    # One row per (run, step, pair, group): caption/en twice, the others once.
    per_step = sum(r.run.steps // 4 for r in plan)
    assert len(table) == per_step * (len(PAIRS) + 1)
    en = table[(table["task"] == "caption") & (table["lang"] == "en")]
    assert (en.groupby(["run_id", "step"])["loss"].nunique() == 1).all()


def read_table_after(out: Path):
    from florenz_scaling.results import read_table

    collect(out)
    return read_table(out / "results.csv")


def test_copies_written_under_the_groups_of_their_day_count_once(sweep) -> None:
    # An older writer wrote a pair listed by two groups once per group; under today's groups (the default
    # three, where caption/en is in SC only) it is one row, not two.
    out, plan = sweep
    run = plan[-1]
    path = out / "runs" / run.run_id / "losses.jsonl"
    lines = path.read_text().splitlines()
    copies = [json.dumps({**d, "group": "ALL"}) for d in map(json.loads, lines) if d["lang"] == "en"]
    path.write_text("\n".join(lines + copies) + "\n")
    table = collect(out)
    mine = table[table["run_id"] == run.run_id]
    assert len(mine) == (run.run.steps // 4) * len(PAIRS) and "ALL" not in set(table["group"])
    # Without a sweep.yaml there are no groups of now: records keep those they were written under.
    (out / "sweep.yaml").unlink()
    table = collect(out)
    assert (table["group"] == "ALL").sum() == run.run.steps // 4
