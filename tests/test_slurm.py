"""Integration tests on a real SLURM cluster (scripts/slurm-local), through submitit.

The cluster is started (idempotently) once per session by ``scripts/slurm-local start``, which installs
slurm-wlm, munge, slurmdbd and mariadb with apt when they are missing; the tests skip only where that is
impossible (not root, no apt-get, no package mirror). Each test has its own sweep directory.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from tiny_sweeps import TINY_DEMO, TRIVIAL, tiny_sweep, until, wait_runs

from florenz_scaling.cli import main as cli_main
from florenz_scaling.files import SweepDir
from florenz_scaling.launch.ledger import Ledger
from florenz_scaling.launch.status import format_status, sweep_status
from florenz_scaling.launch.submit import launch, prepare_runs
from florenz_scaling.results import collect
from florenz_scaling.spec import load_sweep

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.usefixtures("slurm_env")]

# The demo sweep, shrunk: 3 sizes × 2 step counts, tiny held-out sets, every job at once.
QUICK = [
    "grid.steps=[4,8]",
    "components=null",  # launcher tests: from-scratch tiny models, no component building
    "train.eval_every=4",
    "train.checkpoint_every=4",
    "data.heldout_per_pair=8",
    "launch.array_parallelism=8",
    "launch.resources.mem_gb=1",
]


def test_demo_sweep_completes_with_every_pair(repo: Path, tmp_path: Path, capsys) -> None:
    args = ["launch", str(TINY_DEMO), "--out", str(tmp_path), "--executor", "slurm"]
    args += [x for o in QUICK for x in ("-o", o)]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert out.count("submitted ") == 6
    job_ids = {line.split(" as job ")[1].split()[0] for line in out.splitlines() if " as job " in line}
    assert len({j.split("_")[0] for j in job_ids}) == 1  # one array for the whole sweep
    rows = wait_runs(tmp_path, timeout=240)
    assert [r.state for r in rows] == ["done"] * 6, format_status(rows)
    table = collect(tmp_path)
    spec = load_sweep(TINY_DEMO, QUICK)
    group_pairs = {(t, lang) for pairs in spec.data.groups.values() for t, lang in pairs}
    all_pairs = set(zip(table.task, table.lang, strict=True))
    assert group_pairs <= all_pairs
    for (run_id, step), sub in table.groupby(["run_id", "step"]):
        assert set(zip(sub.task, sub.lang, strict=True)) == all_pairs, (run_id, step)
    assert set(table.run_id) == {r.run_id for r in rows}
    assert not table.duplicated(["run_id", "step", "task", "lang", "group"]).any()
    # A finished sweep launched again submits nothing.
    assert cli_main(args) == 0
    assert "0 run(s) submitted; skipped: 6 done" in capsys.readouterr().out
    assert cli_main(["status", str(tmp_path)]) == 0


def test_requeued_job_resumes_from_its_checkpoint(repo: Path, tmp_path: Path) -> None:
    over = ["sizes=[T-0.2M]", "grid.steps=[160]", "train.eval_every=40", "train.checkpoint_every=10"]
    spec, plan = tiny_sweep(tmp_path, over + ["data.heldout_per_pair=8", "launch.resources.mem_gb=1"])
    res = launch(spec, tmp_path, plan, executor="slurm")
    ((run_id, job_id),) = res.submitted
    rd = SweepDir(tmp_path).run(run_id)
    until(lambda: sweep_status(tmp_path)[0].steps_done >= 20, "the run is past a checkpoint", timeout=180)
    assert not rd.done.exists(), "the run finished before it could be requeued; make it longer"
    subprocess.run(["scontrol", "requeue", job_id], check=True)

    def pending() -> bool:
        out = subprocess.run(
            ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True
        ).stdout
        return "PENDING" in out

    until(pending, "the job is back in the queue", timeout=60)
    rows = wait_runs(tmp_path, timeout=240)
    assert rows[0].state == "done", format_status(rows)
    events = [e.event for e in Ledger(SweepDir(tmp_path).ledger).read() if e.run_id == run_id]
    assert events[:2] == ["submitted", "started"] and "requeued" in events and events[-1] == "finished"
    log = (rd.logs / "train.log").read_text()
    assert "resumed from checkpoint at step" in log
    table = collect(tmp_path)
    assert not table.duplicated(["run_id", "step", "task", "lang", "group"]).any()
    per_step = table.groupby("step").size()
    assert list(per_step.index) == [40, 80, 120, 160]
    assert per_step.nunique() == 1  # every eval step has every pair: nothing missing


def test_killed_run_is_resubmitted_alone(repo: Path, tmp_path: Path, monkeypatch) -> None:
    spec, plan = tiny_sweep(
        tmp_path, ["sizes=[T-0.2M]", "grid.steps=[4,8,12]", "launch.resources.mem_gb=0.5"]
    )
    monkeypatch.setenv("FLORENZ_SLEEP_S", "8")
    res = launch(spec, tmp_path, plan, executor="slurm", entry=TRIVIAL)
    assert len(res.submitted) == 3
    victim, job = res.submitted[1]
    until(
        lambda: {r.run_id: r.state for r in sweep_status(tmp_path)}[victim] == "running",
        "victim runs",
        timeout=120,
    )
    subprocess.run(["scancel", job], check=True)
    rows = {r.run_id: r for r in wait_runs(tmp_path, timeout=240)}
    assert rows[victim].state in ("pending", "partial")
    assert all(r.state == "done" for rid, r in rows.items() if rid != victim)
    monkeypatch.setenv("FLORENZ_SLEEP_S", "0")
    again = launch(spec, tmp_path, plan, executor="slurm", entry=TRIVIAL)
    assert [rid for rid, _ in again.submitted] == [victim]
    assert all(r.state == "done" for r in wait_runs(tmp_path, timeout=240))


def test_failed_run_is_reported_while_the_rest_completes(repo: Path, tmp_path: Path, capsys) -> None:
    spec, plan = tiny_sweep(tmp_path, QUICK + ["sizes=[T-0.2M]"])
    prepare_runs(spec, plan, tmp_path)
    bad = plan[0].run_id
    shard = tmp_path / "garbage.tar"
    shard.write_bytes(b"this is not a tar file\n" * 10)
    run_yaml = SweepDir(tmp_path).run(bad).run_yaml
    data = yaml.safe_load(run_yaml.read_text())
    data["data"].update(kind="webdataset", path=str(shard))  # an unreadable data path in this run only
    run_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    launch(spec, tmp_path, plan, executor="slurm")
    rows = {r.run_id: r for r in wait_runs(tmp_path, timeout=240)}
    assert rows[bad].state == "failed", format_status(list(rows.values()))
    assert rows[bad].error and Path(rows[bad].log).exists()
    assert all(r.state == "done" for rid, r in rows.items() if rid != bad)
    assert cli_main(["status", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"FAILED {bad}" in out and rows[bad].log in out
