"""Launcher logic on the ``local`` executor with the trivial job (``florenz_doubles.sleep_run``): idempotent
relaunch, failures with their log path, --only retries, pre-submission validation, ledger, status (with and
without the scheduler). The dry run and its recorded outputs are in ``test_dryrun.py``."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from tiny_sweeps import SMALL, TRIVIAL, tiny_sweep, until, wait_runs

from florenz_scaling.files import SweepDir
from florenz_scaling.launch.ledger import Ledger, histories
from florenz_scaling.launch.status import format_status, progress, sweep_status
from florenz_scaling.launch.submit import LaunchError, first_shard, launch, select_runs
from florenz_scaling.spec import SpecError


def test_local_launch_is_idempotent(repo: Path, tmp_path: Path) -> None:
    spec, plan = tiny_sweep(tmp_path, SMALL)
    res = launch(spec, tmp_path, plan, executor="local", entry=TRIVIAL)
    assert len(res.submitted) == 4
    assert len({job for _, job in res.submitted}) == 2  # array_parallelism slots
    rows = wait_runs(tmp_path, res.jobs)
    assert [r.state for r in rows] == ["done"] * 4
    for r in plan:  # run.yaml written for every run, before submission
        assert (tmp_path / "runs" / r.run_id / "run.yaml").exists()
    again = launch(spec, tmp_path, plan, executor="local", entry=TRIVIAL)
    assert again.submitted == [] and set(again.skipped.values()) == {"done"}
    events = [e.event for e in Ledger(SweepDir(tmp_path).ledger).read()]
    assert events.count("submitted") == 4 and events.count("finished") == 4


def test_failed_run_shows_log_and_retries_alone(repo: Path, tmp_path: Path) -> None:
    spec, plan = tiny_sweep(tmp_path, SMALL)
    bad = plan[1].run_id
    (tmp_path / "runs" / bad).mkdir(parents=True)
    (tmp_path / "runs" / bad / "fail").write_text("cannot read /nonexistent/shards")
    res = launch(spec, tmp_path, plan, executor="local", entry=TRIVIAL)
    rows = {r.run_id: r for r in wait_runs(tmp_path, res.jobs)}
    assert rows[bad].state == "failed"
    assert "cannot read /nonexistent/shards" in rows[bad].error
    assert rows[bad].log and Path(rows[bad].log).exists()
    assert all(r.state == "done" for rid, r in rows.items() if rid != bad)
    text = format_status(list(rows.values()))
    assert f"FAILED {bad}" in text and rows[bad].log in text
    # Fixed, it is retried alone.
    (tmp_path / "runs" / bad / "fail").unlink()
    chosen, skipped = select_runs(plan, tmp_path, retry_failed=True)
    assert [r.run_id for r in chosen] == [bad]
    again = launch(spec, tmp_path, plan, executor="local", only=(bad,), entry=TRIVIAL)
    assert [rid for rid, _ in again.submitted] == [bad]
    assert all(r.state == "done" for r in wait_runs(tmp_path, again.jobs))


def test_killed_local_run_is_resubmitted_alone(repo: Path, tmp_path: Path, monkeypatch) -> None:
    spec, plan = tiny_sweep(tmp_path, SMALL + ["launch.array_parallelism=4"])
    monkeypatch.setenv("FLORENZ_SLEEP_S", "30")
    res = launch(spec, tmp_path, plan, executor="local", entry=TRIVIAL)
    victim_run, victim_pid = res.submitted[0]
    until(lambda: all(r.state == "running" for r in sweep_status(tmp_path)), "all runs running")
    # The run's process dies without a word (say, the OOM killer); the job around it then ends.
    children = Path(f"/proc/{victim_pid}/task/{victim_pid}/children").read_text().split()
    for child in children:
        os.kill(int(child), 9)
    monkeypatch.setenv("FLORENZ_SLEEP_S", "0")

    def victim_failed() -> bool:
        for j in res.jobs:
            j.done()  # reap
        return {r.run_id: r.state for r in sweep_status(tmp_path)}[victim_run] == "failed"

    until(victim_failed, "the killed run shows as failed")
    rows = {r.run_id: r for r in sweep_status(tmp_path)}
    assert sum(r.state == "running" for r in rows.values()) == 3
    again = launch(spec, tmp_path, plan, executor="local", entry=TRIVIAL)
    assert [rid for rid, _ in again.submitted] == [victim_run]
    from florenz_scaling.launch import cancel

    cancelled = cancel(tmp_path)
    assert len(cancelled) == 4
    rows = wait_runs(tmp_path, res.jobs + again.jobs, timeout=30)
    assert {r.state for r in rows} <= {"pending", "partial", "done"}


def test_validation_fails_before_anything_is_submitted(repo: Path, tmp_path: Path) -> None:
    spec, plan = tiny_sweep(
        tmp_path, SMALL + ["data.kind=webdataset", "data.path=/nonexistent/{0000..0009}.tar"]
    )
    with pytest.raises(SpecError, match=r"data\.path.*nonexistent/0000\.tar"):
        launch(spec, tmp_path, plan, executor="local", entry=TRIVIAL)
    assert not SweepDir(tmp_path).ledger.exists() and not SweepDir(tmp_path).jobs.exists()
    spec, plan = tiny_sweep(tmp_path / "b", SMALL + ["train.world_size=2", "train.micro_batch=8"])
    with pytest.raises(SpecError, match="tasks_per_node"):
        launch(spec, tmp_path / "b", plan, executor="local", entry=TRIVIAL)
    empty = tmp_path / "no-weights"
    empty.mkdir()
    spec, plan = tiny_sweep(tmp_path / "d", SMALL + [f"pretrained={{T-0.2M: {{florence: {empty}}}}}"])
    with pytest.raises(SpecError, match=r"pretrained\.T-0\.2M\.florence.*safetensors"):
        launch(spec, tmp_path / "d", plan, executor="local", entry=TRIVIAL)
    assert not SweepDir(tmp_path / "d").ledger.exists()
    spec, plan = tiny_sweep(tmp_path / "c", SMALL)
    with pytest.raises(LaunchError, match="no_such_module"):
        launch(spec, tmp_path / "c", plan, executor="local", entry="no_such_module:main")
    with pytest.raises(SpecError, match="--only"):
        launch(spec, tmp_path / "c", plan, executor="local", only=("nope",), entry=TRIVIAL)


def test_first_shard() -> None:
    assert first_shard("/d/{0000..2174}.tar") == "/d/0000.tar"
    assert first_shard("/d/{a,b}/x-{01..10}.tar") == "/d/a/x-01.tar"
    assert first_shard("/d/shards") == "/d/shards"


def test_ledger_concurrent_appends_and_histories(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")

    def writer(k: int) -> None:
        for i in range(50):
            ledger.record("started", f"r{k}", job_id=str(i), executor="local", log="x" * 300)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ledger.read()) == 400  # no torn or interleaved lines
    with open(ledger.path, "a") as fh:
        fh.write('{"event": "fini')  # a writer killed mid-line
    ledger.record("submitted", "a", job_id="7", executor="slurm")
    ledger.record("failed", "a", job_id="6", executor="slurm", error="old job")  # an older job's event
    ledger.record("requeued", "a", job_id="7", executor="slurm")
    h = histories(ledger.read())["a"]
    assert h.submitted.job_id == "7" and [e.event for e in h.events] == ["requeued"] and h.terminal is None
    with pytest.raises(ValueError, match="unknown ledger event"):
        ledger.record("exploded", "a")


def test_progress_reads_latest_group_losses(tmp_path: Path) -> None:
    f = tmp_path / "losses.jsonl"
    recs = []
    for step in (4, 8):
        for task, lang, group, loss, n in (
            ("caption", "en", "SC", 2.0, 10),
            ("caption", "de", "SC", 4.0, 30),
        ):
            recs.append(
                dict(
                    run_id="r",
                    step=step,
                    seen_samples=step * 16,
                    kind="eval",
                    task=task,
                    lang=lang,
                    group=group,
                    loss=loss + step,
                    samples=n,
                    tokens=100,
                )
            )
        recs.append(
            dict(
                run_id="r",
                step=step + 1,
                seen_samples=0,
                kind="train",
                task="",
                lang="",
                group="",
                loss=1.0,
                samples=16,
                tokens=10,
            )
        )
    f.write_text("".join(json.dumps(r) + "\n" for r in recs) + '{"trunc')
    step, losses = progress(f)
    assert step == 9
    assert losses == pytest.approx({"SC": (10 * 10 + 12 * 30) / 40})


def test_status_without_the_scheduler_reads_the_ledger_alone(repo: Path, tmp_path: Path) -> None:
    """What the report shows: no squeue, no /proc, nothing written; attempts and last event over all jobs."""
    _, plan = tiny_sweep(tmp_path, SMALL)
    ids = [r.run_id for r in plan]
    ledger = Ledger(SweepDir(tmp_path).ledger)
    for rid in ids[:3]:
        ledger.record("submitted", rid, job_id="9_1", executor="slurm")
    ledger.record("started", ids[1], job_id="9_1", executor="slurm")
    ledger.record("requeued", ids[2], job_id="9_1", executor="slurm")
    ledger.record("failed", ids[2], job_id="9_1", executor="slurm", error="boom")
    ledger.record("submitted", ids[2], job_id="10_0", executor="slurm")
    before = ledger.path.read_bytes()
    rows = {r.run_id: r for r in sweep_status(tmp_path, reconcile=False, scheduler=False)}
    assert [rows[i].state for i in ids] == ["submitted", "running", "submitted", "pending"]
    assert rows[ids[2]].attempts == 3 and rows[ids[2]].job_id == "10_0"
    assert (rows[ids[2]].last_event, rows[ids[2]].last_job_id) == ("submitted", "10_0")
    assert rows[ids[3]].last_time is None and rows[ids[3]].attempts == 0
    ledger.record("failed", ids[0], job_id="9_1", executor="slurm", error="out of memory")
    ledger.record("requeued", ids[1], job_id="9_1", executor="slurm")
    rows = {r.run_id: r for r in sweep_status(tmp_path, reconcile=False, scheduler=False)}
    assert (rows[ids[0]].state, rows[ids[0]].error) == ("failed", "out of memory")
    assert rows[ids[1]].state == "requeued"
    assert ledger.path.read_bytes().startswith(before) and len(ledger.read()) == 9  # nothing was added


def test_a_local_job_is_running_from_fork_to_exit_and_a_foreign_pid_is_not(tmp_path: Path) -> None:
    import subprocess

    from florenz_scaling.launch.scheduler import local_states

    # A controller forked but not yet exec'd shows its parent's command line: it is starting, not gone
    # (calling it gone failed a job on a loaded machine that then ran fine).
    release_r, release_w = os.pipe()
    child = os.fork()
    if child == 0:  # the not-yet-exec'd controller: waits until released, never runs test code
        os.close(release_w)
        os.read(release_r, 1)
        os._exit(0)
    os.close(release_r)
    try:
        assert local_states([str(child)]) == {str(child): ("running", "process starting")}
    finally:
        os.close(release_w)
        os.waitpid(child, 0)
    assert local_states([str(child)])[str(child)] == ("completed", "process gone")
    foreign = subprocess.Popen(["sleep", "30"])  # a pid reused by something that is not a controller
    try:
        assert local_states([str(foreign.pid)])[str(foreign.pid)][0] == "completed"
    finally:
        foreign.kill()
        foreign.wait()
