"""Warmup-stable-decay sweeps: the schedule, the plan (trunk segments and branches), cosine run ids that did
not change, the dry run's dependencies, and launches end to end (local executor, a killed trunk relaunched,
a branch killed and resumed exactly; the real-SLURM launch with job dependencies is marked ``slurm``).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from tiny_sweeps import wait_runs

from florenz_scaling.files import RunDir, SweepDir
from florenz_scaling.launch.dryrun import format_dry_run
from florenz_scaling.launch.ledger import Ledger
from florenz_scaling.launch.status import format_status, sweep_status
from florenz_scaling.launch.submit import launch, prepare_runs
from florenz_scaling.plan import branch_point, compute_ratio, format_plan, make_plan, read_plan, write_plan
from florenz_scaling.results import collect, read_records
from florenz_scaling.spec import SpecError, SweepSpec, load_run
from florenz_scaling.spec.load import apply_overrides, from_dict
from florenz_scaling.train.checkpoint import complete_steps
from florenz_scaling.train.process import free_port

CLI = str(Path(sys.executable).with_name("florenz-scaling"))
# The demo sweep as it was when run ids were last pinned (sweeps/demo.yaml changes with the demo).
DEMO = {
    "name": "demo",
    "seed": 44595,
    "sizes": ["T-0.2M", "T-0.5M", "T-1.3M"],
    "grid": {"steps": [30, 60, 120], "global_batch": 16},
    "train": {
        "lr": 1.0e-3,
        "warmup_steps": 10,
        "micro_batch": 16,
        "zero_stage": 0,
        "precision": "fp32",
        "eval_every": 30,
        "checkpoint_every": 30,
        "threads": 1,
    },
    "data": {
        "image_size": 64,
        "prompt_len": 48,
        "target_len": 40,
        "vocab_size": 1024,
        "heldout_per_pair": 32,
    },
    "launch": {
        "executor": "local",
        "array_parallelism": 2,
        "resources": {"cpus_per_task": 1, "mem_gb": 2, "timeout_min": 30},
    },
    "fit": {"bootstrap": 100},
}
# A tiny WSD sweep that trains for real in seconds: one size, three budgets, no decoding at the end.
TINY = [
    "sizes=[T-0.2M]",
    "grid.steps=[20,30,40]",
    "grid.global_batch=16",
    "train.micro_batch=8",
    "train.warmup_steps=2",
    "train.eval_every=5",
    "train.checkpoint_every=5",
    "train.schedule=wsd",
    "data.heldout_per_pair=4",
    "generate.enabled=false",
    "launch.resources.mem_gb=1",
]


def sweep(overrides: list[str]) -> SweepSpec:
    return from_dict(SweepSpec, apply_overrides(DEMO, overrides))


def planned(tmp: Path, overrides: list[str]) -> tuple[SweepSpec, list]:
    spec = sweep(overrides)
    plan = make_plan(spec)
    write_plan(spec, plan, tmp)
    return spec, plan


# --- spec and plan ---------------------------------------------------------------------------------------


def test_wsd_runs_differ_from_cosine_runs() -> None:
    ids = [r.run_id for r in make_plan(sweep([]))]
    assert ids[:4] == [
        "T-0.2M-s30-279d6c4c15",
        "T-0.2M-s60-f01e066ce1",
        "T-0.2M-s120-6f5040d89b",
        "T-0.5M-s30-6120caa5f9",
    ]
    # The WSD fields at their defaults add nothing to a cosine run's id (spec.identity: one rule, the values
    # that differ from their defaults); a WSD run is another run.
    assert not set(ids) & {r.run_id for r in make_plan(sweep(["train.schedule=wsd"]))}


def test_wsd_demo_sweep_plans_a_trunk_and_branches_at_most_055_of_cosine(tmp_path: Path) -> None:
    spec, plan = planned(tmp_path, ["train.schedule=wsd", "grid.steps=[60,80,100]"])
    for size in spec.sizes:
        mine = [r for r in plan if r.run.size == size]
        trunk = [r for r in mine if r.role == "trunk"]
        branches = [r for r in mine if r.role == "branch"]
        assert [r.run.steps for r in trunk] == [48, 64, 80]  # S·(1 − 0.2) for each budget
        assert [r.run.start_step for r in trunk] == [0, 48, 64]
        assert [r.run.start_from for r in trunk] == [None, trunk[0].run_id, trunk[1].run_id]
        assert [(r.run.steps, r.run.start_step) for r in branches] == [(60, 48), (80, 64), (100, 80)]
        assert [r.run.start_from for r in branches] == [t.run_id for t in trunk]
    ratio = compute_ratio(plan)
    assert ratio == pytest.approx((80 + 12 + 16 + 20) / 240)
    assert ratio <= 0.55
    rows = read_plan(tmp_path)
    by_id = {r["run_id"]: r for r in rows}
    branch = next(r for r in plan if r.role == "branch")
    row = by_id[branch.run_id]
    assert (row["role"], row["branch_of"], row["start_step"], row["schedule"]) == (
        "branch",
        branch.run.start_from,
        "48",
        "wsd",
    )
    assert float(row["added_gmacs"]) == pytest.approx(float(row["compute_gmacs"]) * 12 / 60)
    text = format_plan(spec, plan)
    assert f"WSD/cosine = {ratio:.3f}" in text and "equivalent cosine grid" in text


def test_a_branch_inside_the_warmup_is_refused() -> None:
    with pytest.raises(SpecError, match="warm-up"):
        make_plan(sweep(["train.schedule=wsd", "train.warmup_steps=40"]))
    with pytest.raises(SpecError, match="decay_fraction"):
        sweep(["train.schedule=wsd", "train.decay_fraction=1.5"])


def test_wsd_schedule_shapes_and_branch_points() -> None:
    from florenz_scaling.train.optim import decay_start, wsd_factor

    f = {
        shape: [wsd_factor(s, 2, 8, 10, 0.1, shape) for s in range(10)]
        for shape in ("linear", "cosine", "1-sqrt")
    }
    for shape, values in f.items():
        assert values[:2] == [0.5, 1.0] and values[2:9] == [1.0] * 7, shape  # warm-up, stable, decay start
    assert f["linear"][9] == pytest.approx(0.1 + 0.9 * 0.5)
    assert f["1-sqrt"][9] == pytest.approx(0.1 + 0.9 * (1 - math.sqrt(0.5)))
    assert f["cosine"][9] == pytest.approx(0.1 + 0.9 * 0.5)
    plan = make_plan(sweep(["train.schedule=wsd", "extra_runs=[{size: T-0.2M, steps: 60}]"]))
    for r in plan:  # a branch decays where a standalone WSD run of its length would
        if r.role == "branch":
            assert decay_start(r.run) == r.run.start_step == branch_point(r.run.steps, 0.2)
        if r.role == "trunk":
            assert decay_start(r.run) == r.run.steps
    (alone,) = [r for r in plan if r.role == "run"]
    assert decay_start(alone.run) == branch_point(60, 0.2) == 48


def test_dry_run_shows_each_branch_after_its_trunk_segment() -> None:
    spec = sweep(["train.schedule=wsd", "grid.steps=[60,80,100]", "sizes=[T-0.2M]"])
    plan = make_plan(spec)
    text = format_dry_run(spec, plan, "slurm")
    trunk = [r.run_id for r in plan if r.role == "trunk"]
    assert text.count("== array") == 4  # the first segment; then after each segment, its children
    for seg in trunk:
        assert f"after: {seg} (SLURM: afterok" in text
        assert f"#SBATCH --dependency='afterok:<job of {seg}>'" in text
    assert text.count("#SBATCH --kill-on-invalid-dep=yes") == 3
    local = format_dry_run(spec, plan, "local")
    assert local.count("== slot") == 1  # one trunk with its branches is one slot, in a valid order
    order = [line.split()[1] for line in local.splitlines() if line.startswith("  [")]
    for r in plan:
        if r.run.start_from:
            assert order.index(r.run.start_from) < order.index(r.run_id)


# --- end to end ------------------------------------------------------------------------------------------


def check_records(out: Path, plan: list, eval_every: int) -> None:
    """Every run's eval records exactly once at each eval step after its start and at its end; the table
    has each branch's end as a final point and no trunk row as one."""
    table = collect(out)  # raises on duplicated records
    pairs = set(zip(table.task, table.lang, table.group, strict=True))
    for r in plan:
        recs = read_records(SweepDir(out).run(r.run_id).losses).records
        evals = Counter((x.step, x.task, x.lang, x.group) for x in recs if x.kind == "eval")
        assert all(n == 1 for n in evals.values()), r.run_id
        steps = {s for s in range(r.run.start_step + 1, r.run.steps) if s % eval_every == 0} | {r.run.steps}
        assert set(evals) == {(s, *p) for s in steps for p in pairs}, r.run_id
    finals = table[table["final"]]
    assert set(finals["run_id"]) == {r.run_id for r in plan if r.role == "branch"}
    assert set(table.loc[table["role"] == "trunk", "final"]) == {False}
    assert set(table["schedule"]) == {"wsd"}


@pytest.mark.slow
def test_wsd_sweep_runs_end_to_end_locally(tmp_path: Path) -> None:
    spec, plan = planned(tmp_path, TINY)
    res = launch(spec, tmp_path, plan, executor="local")
    assert len(res.submitted) == 6 and len({j for _, j in res.submitted}) == 1
    rows = wait_runs(tmp_path, res.jobs, timeout=300)
    assert [r.state for r in rows] == ["done"] * 6, format_status(rows)
    check_records(tmp_path, plan, eval_every=5)
    again = launch(spec, tmp_path, plan, executor="local")
    assert again.submitted == [] and set(again.skipped.values()) == {"done"}


def _kill_trainer(run_dir: Path) -> None:
    """SIGKILL the process that trains ``run_dir``: the holder of its trainer lock (a local slot forks one
    child per run, so the command line does not name the run)."""
    inode = RunDir(run_dir).trainer_lock.stat().st_ino
    holders = set()
    for line in Path("/proc/locks").read_text().splitlines():
        f = line.split()  # "1: FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> 0 EOF"; "->": a waiter
        if f[1] == "FLOCK" and int(f[5].split(":")[-1]) == inode:
            holders.add(int(f[4]))
    assert len(holders) == 1, f"trainers of {run_dir}: {holders}"
    os.kill(holders.pop(), signal.SIGKILL)


@pytest.mark.slow
def test_killed_trunk_relaunched_finishes_without_duplicated_or_missing_records(tmp_path: Path) -> None:
    # Longer, slower steps: a window to kill the second trunk segment (32 -> 48) in.
    spec, plan = planned(tmp_path, [*TINY, "grid.steps=[40,60,80]", "grid.global_batch=32"])
    trunk = [r for r in plan if r.role == "trunk"]
    victim = SweepDir(tmp_path).run(trunk[1].run_id)
    assert (victim.root.name, trunk[1].run.start_step, trunk[1].run.steps) == (trunk[1].run_id, 32, 48)
    res = launch(spec, tmp_path, plan, executor="local")
    deadline = time.time() + 240
    while not (
        35 in complete_steps(victim.checkpoints)
        and victim.losses.exists()
        and any(x.step > 35 for x in read_records(victim.losses).records)
    ):
        assert time.time() < deadline and not victim.done.exists(), "could not catch the trunk mid-way"
        time.sleep(0.01)
    _kill_trainer(victim.root)  # the trunk's trainer dies without a word (say, the OOM killer)
    rows = {r.run_id: r for r in wait_runs(tmp_path, res.jobs, timeout=300)}
    assert rows[trunk[1].run_id].state == "failed" and rows[trunk[0].run_id].state == "done"
    again = launch(spec, tmp_path, plan, executor="local")
    # The trunk from its checkpoint, and what starts from it; nothing else.
    done_before = {rid for rid, r in rows.items() if r.state == "done"}
    assert {rid for rid, _ in again.submitted} == {r.run_id for r in plan} - done_before
    assert trunk[1].run_id in {rid for rid, _ in again.submitted}
    rows2 = wait_runs(tmp_path, again.jobs, timeout=300)
    assert [r.state for r in rows2] == ["done"] * 6, format_status(rows2)
    resumed = re.findall(r"resumed from checkpoint at step (\d+)", (victim.logs / "train.log").read_text())
    assert resumed[0] == "32" and 35 <= int(resumed[-1]) < 48, resumed  # the trunk's, then its own
    check_records(tmp_path, plan, eval_every=5)


def _train(rd: Path, timeout: float = 240) -> str:
    env = {**os.environ, "MASTER_PORT": str(free_port()), "WANDB_MODE": "disabled"}
    proc = subprocess.run([CLI, "train", str(rd)], env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_branch_resumed_after_sigkill_ends_exactly_like_an_uninterrupted_branch(tmp_path: Path) -> None:
    over = [*TINY, "grid.steps=[40]", "train.decay_fraction=0.5", "grid.global_batch=32"]
    spec, plan = planned(tmp_path / "a", over)
    prepare_runs(spec, plan, tmp_path / "a")
    (trunk,) = [r for r in plan if r.role == "trunk"]
    (branch,) = [r for r in plan if r.role == "branch"]
    assert (branch.run.start_step, branch.run.steps) == (20, 40)
    _train(SweepDir(tmp_path / "a").run(trunk.run_id).root)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    ref = SweepDir(tmp_path / "a").run(branch.run_id)
    assert "resumed from checkpoint at step 20" in _train(ref.root)

    rd = SweepDir(tmp_path / "b").run(branch.run_id)
    env = {**os.environ, "MASTER_PORT": str(free_port()), "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(
        [CLI, "train", str(rd.root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 240
    while not (
        30 in complete_steps(rd.checkpoints)
        and rd.losses.exists()
        and any(x.step > 30 for x in read_records(rd.losses).records)
    ):
        assert proc.poll() is None and time.time() < deadline, "the branch ended before it could be killed"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not rd.done.exists()
    assert "resumed from checkpoint at step 30" in _train(rd.root)

    def losses(d) -> dict:
        return {(x.kind, x.step, x.task, x.lang, x.group): x.loss for x in read_records(d.losses).records}

    mine, theirs = losses(rd), losses(ref)
    assert mine.keys() == theirs.keys()
    assert mine == pytest.approx(theirs, abs=1e-5)
    assert load_run(rd.run_yaml).start_from == trunk.run_id


# --- real SLURM --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_env")
def test_wsd_sweep_on_slurm_with_job_dependencies(tmp_path: Path) -> None:
    spec, plan = planned(tmp_path, [*TINY, "launch.array_parallelism=8"])
    res = launch(spec, tmp_path, plan, executor="slurm")
    job_of = dict(res.submitted)
    deps = {}
    for rid, job in job_of.items():  # what SLURM itself holds each job for, right after submission
        out = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
        deps[rid] = next((w.split("=", 1)[1] for w in out.split() if w.startswith("Dependency=")), "")
    for p in plan:
        if p.run.start_from is None:
            assert deps[p.run_id] in ("", "(null)"), deps
        else:
            dep = deps[p.run_id]
            parent = job_of[p.run.start_from]
            assert dep in ("", "(null)") or f"afterok:{parent}" in dep, (p.run_id, dep, parent)
    # At least the last branch is still held by its dependency when asked (its trunk is far from done).
    last = max((p for p in plan if p.role == "branch"), key=lambda p: p.run.steps)
    assert f"afterok:{job_of[last.run.start_from]}" in deps[last.run_id]
    deadline = time.time() + 400
    while any(r.state in ("queued", "running") for r in sweep_status(tmp_path)):
        assert time.time() < deadline, format_status(sweep_status(tmp_path))
        time.sleep(1)
    rows = sweep_status(tmp_path)
    assert [r.state for r in rows] == ["done"] * 6, format_status(rows)
    acct = ""
    while time.time() < deadline + 60:  # DONE is written before the job itself ends
        acct = subprocess.run(
            ["sacct", "-n", "-X", "-j", ",".join(job_of.values()), "-o", "JobID,State"],
            capture_output=True,
            text=True,
        ).stdout
        if acct.count("COMPLETED") >= 6:
            break
        time.sleep(1)
    assert acct.count("COMPLETED") >= 6, acct
    check_records(tmp_path, plan, eval_every=5)
    events = Counter(e.event for e in Ledger(SweepDir(tmp_path).ledger).read())
    assert events["submitted"] == 6 and events["finished"] == 6
