"""Runs bigger than one process on the local SLURM cluster: srun tasks, two nodes, ZeRO-2 and ZeRO-3.

Each multi-rank run is launched through submitit like a sweep's run, as srun tasks that export the torch
distributed environment from SLURM's variables; it must end with the held-out losses of the same run trained
by one process, to within what a different reduction order (and micro-batch grouping) allows. The cluster
from ``scripts/slurm-local start`` has two nodes (two slurmd daemons on this machine).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tiny_sweeps import tiny_sweep, until, wait_runs

from florenz_scaling.files import SweepDir
from florenz_scaling.launch.ledger import Ledger
from florenz_scaling.launch.status import format_status, sweep_status
from florenz_scaling.launch.submit import launch
from florenz_scaling.results import read_records

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.usefixtures("slurm_env")]
REPO = Path(__file__).resolve().parents[1]

BASE = [
    "sizes=[T-0.2M]",
    "grid.steps=[12]",
    "components=null",
    "train.eval_every=6",
    "train.checkpoint_every=6",
    "train.micro_batch=8",
    "train.threads=1",
    "data.heldout_per_pair=8",
    "launch.resources.mem_gb=1",
]
TWO_RANKS = ["train.world_size=2"]
CASES = {
    "one process": ["train.zero_stage=0"],
    "ZeRO-2, 2 tasks": TWO_RANKS + ["train.zero_stage=2", "launch.resources.tasks_per_node=2"],
    # Decoding mid-run (every eval) switches ZeRO-3's hooks off and on again: training must go on unchanged.
    "ZeRO-3, 2 tasks": TWO_RANKS
    + ["train.zero_stage=3", "launch.resources.tasks_per_node=2", "generate.every_eval=true"],
    "ZeRO-2, 2 nodes": TWO_RANKS + ["train.zero_stage=2", "launch.resources.nodes=2"],
}
# Relative difference of held-out losses allowed between a 2-rank and the 1-process run.
TOLERANCE = 2e-3


def _nodes() -> int:
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True).stdout
    return len(set(out.split()))


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, slurm_cluster: None) -> dict[str, tuple[Path, str]]:
    """Every case launched at once (one sweep each), waited for; case -> (sweep directory, job id)."""
    if _nodes() < 2:
        pytest.skip("the local cluster has one node (SLURM_LOCAL_NODES=1)")
    dirs = {}
    for name, over in CASES.items():
        out = tmp_path_factory.mktemp(name.replace(",", "").replace(" ", "-"))
        spec, plan = tiny_sweep(out, BASE + over)
        ((_, job),) = launch(spec, out, plan, executor="slurm").submitted
        dirs[name] = (out, job)
    for name, (out, _) in dirs.items():
        rows = wait_runs(out, timeout=600)
        assert [r.state for r in rows] == ["done"], f"{name}:\n{format_status(rows)}"
    return dirs


def _final_heldout(out: Path) -> dict[tuple[str, str], float]:
    (rd,) = [SweepDir(out).run(r.run_id) for r in sweep_status(out)]
    recs = [r for r in read_records(rd.losses).records if r.kind == "eval" and r.step == 12]
    return {(r.task, r.lang): r.loss for r in recs}


@pytest.mark.parametrize("case", [c for c in CASES if c != "one process"])
def test_multi_rank_run_ends_with_the_single_process_losses(
    finished: dict[str, tuple[Path, str]], case: str
) -> None:
    reference, ours = _final_heldout(finished["one process"][0]), _final_heldout(finished[case][0])
    assert ours.keys() == reference.keys() and len(ours) >= 6
    worst = max(abs(ours[k] - reference[k]) / reference[k] for k in ours)
    print(f"{case}: largest relative held-out difference to one process {worst:.2e}")
    assert worst < TOLERANCE, (case, ours, reference)
    out = finished[case][0]
    (rd,) = [SweepDir(out).run(r.run_id) for r in sweep_status(out)]
    log = (rd.logs / "train.log").read_text()
    assert "2 rank(s)" in log
    if "ZeRO-3" in case:
        assert "held by this rank: ZeRO-3 partition" in log and "step 6 generation" in log


def test_two_node_job_ran_a_rank_on_each_node(finished: dict[str, tuple[Path, str]]) -> None:
    job = finished["ZeRO-2, 2 nodes"][1]
    acct = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-j", job.split("_")[0], "-o", "NNodes,NodeList"],
        capture_output=True,
        text=True,
    ).stdout
    nnodes, nodelist = acct.strip().splitlines()[0].split("|")
    assert nnodes == "2", acct
    assert "," in nodelist or "[" in nodelist, acct


@pytest.mark.parametrize(
    "stop",
    [
        ["scontrol", "requeue"],  # SIGTERM to every task, SLURM requeues the job
        ["scancel", "--signal=USR2"],  # what --signal=USR2@90 sends before a timeout: submitit requeues
    ],
    ids=["scontrol-requeue", "timeout-signal"],
)
def test_stopped_two_task_job_resumes_both_ranks(repo: Path, tmp_path: Path, stop: list[str]) -> None:
    over = BASE + TWO_RANKS + ["train.zero_stage=2", "launch.resources.tasks_per_node=2"]
    over += ["grid.steps=[160]", "train.eval_every=40", "train.checkpoint_every=50"]
    spec, plan = tiny_sweep(tmp_path, over)
    ((run_id, job_id),) = launch(spec, tmp_path, plan, executor="slurm").submitted
    rd = SweepDir(tmp_path).run(run_id)
    until(lambda: sweep_status(tmp_path)[0].steps_done >= 20, "the run is well under way", timeout=240)
    assert not rd.done.exists(), "the run finished before it could be stopped; make it longer"
    subprocess.run([*stop, job_id], check=True)

    def pending() -> bool:
        out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
        return "PENDING" in out.stdout

    until(pending, "the job is back in the queue", timeout=90)
    rows = wait_runs(tmp_path, timeout=600)
    assert rows[0].state == "done", format_status(rows)

    def events() -> list[str]:
        return [e.event for e in Ledger(SweepDir(tmp_path).ledger).read() if e.run_id == run_id]

    # DONE is written by the trainer, "finished" by the job after it returns: a moment later.
    until(lambda: events()[-1] == "finished", "the job records the run as finished", timeout=60)
    assert "requeued" in events()
    # Both ranks checkpointed on the signal, before the first periodic checkpoint (step 50), and the trainer
    # checks that every rank loaded the same step (one collective) before it says so.
    log = (rd.logs / "train.log").read_text()
    assert "stop signal: checkpointed at step" in log and "on all 2 rank(s)" in log
    recs = read_records(rd.losses).records
    evals = [(r.step, r.task, r.lang, r.group) for r in recs if r.kind == "eval"]
    assert len(evals) == len(set(evals)), "records after the checkpoint were redone once, not duplicated"
    assert sorted({r.step for r in recs if r.kind == "eval"}) == [40, 80, 120, 160]
