"""Two launches of one sweep at the same moment submit each run once; the second reports the first's runs."""

from __future__ import annotations

import collections
import json
import multiprocessing as mp
from pathlib import Path

import pytest
from tiny_sweeps import SMALL, TRIVIAL, tiny_sweep, wait_runs

from florenz_scaling.files import SweepDir
from florenz_scaling.launch import launch


def _launch_at(barrier, repo: Path, out: Path, queue) -> None:
    spec, plan = tiny_sweep(out, SMALL)
    barrier.wait()
    res = launch(spec, out, plan, executor="local", entry=TRIVIAL)
    queue.put((sorted(r for r, _ in res.submitted), dict(res.skipped)))


def _race(repo: Path, out: Path) -> list[tuple[list[str], dict[str, str]]]:
    ctx = mp.get_context("spawn")  # fresh interpreters, as two terminals would be
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_launch_at, args=(barrier, repo, out, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


@pytest.mark.parametrize("attempt", range(4))
def test_concurrent_launches_submit_each_run_exactly_once(
    repo: Path, tmp_path: Path, attempt: int, monkeypatch
) -> None:
    monkeypatch.setenv("FLORENZ_SLEEP_S", "3")  # the first launch's runs are still live when the second looks
    results = _race(repo, tmp_path)
    submitted = [r for subs, _ in results for r in subs]
    spec, plan = tiny_sweep(tmp_path, SMALL)
    assert sorted(submitted) == sorted(r.run_id for r in plan), results
    second = next(skipped for subs, skipped in results if not subs)
    assert set(second) == {r.run_id for r in plan}  # it says why it submitted nothing: already queued/running
    events = [json.loads(line) for line in SweepDir(tmp_path).ledger.read_text().splitlines()]
    per_run = collections.Counter(e["run_id"] for e in events if e["event"] == "submitted")
    assert set(per_run.values()) == {1}
    wait_runs(tmp_path, [])


def test_a_run_with_non_finite_final_losses_is_diverged_not_done(repo: Path, tmp_path: Path) -> None:
    from florenz_scaling.launch import format_status, sweep_status
    from florenz_scaling.launch.submit import select_runs

    spec, plan = tiny_sweep(tmp_path, SMALL)
    run = plan[0]
    rd = SweepDir(tmp_path).run(run.run_id)
    rd.root.mkdir(parents=True)
    rec = dict(
        run_id=run.run_id,
        step=run.run.steps,
        seen_samples=1,
        kind="eval",
        task="caption",
        lang="en",
        group="SC",
        loss=0.0,
        samples=8,
        tokens=8,
    )
    rd.losses.write_text(json.dumps(rec).replace('"loss": 0.0', '"loss": NaN') + "\n")
    rd.done.write_text("{}\n")
    rows = {r.run_id: r for r in sweep_status(tmp_path, scheduler=False)}
    assert rows[run.run_id].state == "diverged"
    assert f"DIVERGED {run.run_id}" in format_status(list(rows.values()))
    chosen, skipped = select_runs(plan, tmp_path, (), False)
    assert skipped[run.run_id] == "diverged" and run.run_id not in {r.run_id for r in chosen}
