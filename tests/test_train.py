"""The DeepSpeed trainer on CPU, for real: ZeRO stages, two processes, SIGKILL/SIGTERM resume, DONE, wandb.

Runs go through the ``florenz-scaling train`` command in a subprocess (as a job would), each with its own
MASTER_PORT. The tiny size T-0.2M trains a step in well under a second; most of each run's time is imports and
``deepspeed.initialize``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from train_runs import CLI, DIST_VARS, child_env, make_run, train

from florenz_scaling import spec
from florenz_scaling.files import RunDir
from florenz_scaling.results import LossRecord, read_records
from florenz_scaling.train.checkpoint import COMPLETE, complete_steps
from florenz_scaling.train.process import free_port

# Every trainer child here mirrors to wandb (offline): the reference run's mirror is checked, and the kills
# and resumes go on with its service running, as in a real job.
WANDB = "offline"
# Held-out groups (SC, UC, ST: 6 pairs) plus training pairs in no group (translate de, fr, ru).
EVAL_PAIRS = {
    ("caption", "en", "SC"),
    ("caption", "de", "SC"),
    ("caption", "es", "UC"),
    ("caption", "zh", "UC"),
    ("translate", "es", "ST"),
    ("translate", "zh", "ST"),
    ("translate", "de", ""),
    ("translate", "fr", ""),
    ("translate", "ru", ""),
}


def start(rd: RunDir) -> subprocess.Popen:
    # Own session, so that killing it can also take its wandb service process (the test started both).
    return subprocess.Popen(
        [CLI, "train", str(rd.root)],
        env=child_env(WANDB),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for(cond, proc: subprocess.Popen, timeout: float = 180) -> None:
    t0 = time.monotonic()
    while not cond():
        if proc.poll() is not None:
            pytest.fail(
                f"trainer exited ({proc.returncode}) before the test could interrupt it:\n"
                f"{proc.stdout.read()[-3000:]}"
            )
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail("timed out waiting for the trainer")
        time.sleep(0.02)


def records(rd: RunDir) -> list[LossRecord]:
    report = read_records(rd.losses)
    assert not report.bad_lines and not report.truncated
    return report.records


def record_keys(recs: list[LossRecord]) -> list[tuple]:
    return [(r.kind, r.step, r.task, r.lang, r.group) for r in recs]


def check_complete_run(rd: RunDir, steps: int, eval_every: int) -> list[LossRecord]:
    """DONE written, eval records for every pair at every eval step, no duplicates, a train record."""
    assert rd.done.is_file()
    recs = records(rd)
    keys = record_keys(recs)
    assert not [k for k, n in Counter(keys).items() if n > 1], "duplicated records"
    for step in [*range(eval_every, steps, eval_every), steps]:
        at = {(r.task, r.lang, r.group) for r in recs if r.kind == "eval" and r.step == step}
        assert at == EVAL_PAIRS, f"step {step}"
    for kind in ("shuffled_image", "shuffled_prompt"):
        shuffled = {(r.step, r.task, r.lang, r.group) for r in recs if r.kind == kind}
        assert shuffled == {(steps, *p) for p in EVAL_PAIRS}, "conditioning probes at the last step only"
    train_recs = [r for r in recs if r.kind == "train"]
    assert train_recs and train_recs[-1].step == steps and train_recs[-1].lr is not None
    assert all(r.samples_per_s and r.samples_per_s > 0 for r in train_recs)
    return recs


def eval_losses(recs: list[LossRecord]) -> dict[tuple, float]:
    return {(r.step, r.task, r.lang, r.group): r.loss for r in recs if r.kind == "eval"}


# --- one process, every ZeRO stage -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("zero", [0, 1, 2, 3])
def test_zero_stage_trains_and_evaluates_every_pair(tmp_path: Path, zero: int) -> None:
    rd = make_run(tmp_path, zero=zero, keep=1)
    train(rd, wandb=WANDB)
    recs = check_complete_run(rd, steps=6, eval_every=3)
    assert {r.step for r in recs if r.kind == "train"} == {1, 6}
    assert complete_steps(rd.checkpoints) == [6], "keep_checkpoints=1 keeps only the newest"
    assert (rd.logs / "train.log").read_text().count("held-out") == 2


# --- two processes ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_zero2_two_processes_with_torchrun(tmp_path: Path) -> None:
    rd = make_run(tmp_path, zero=2, world_size=2, global_batch=16)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        CLI,
        "train",
        str(rd.root),
    ]
    proc = subprocess.run(cmd, env=child_env(WANDB), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    check_complete_run(rd, steps=6, eval_every=3)
    ckpt = rd.checkpoints / "step00000006"
    assert (ckpt / COMPLETE).is_file()
    assert {p.name for p in ckpt.glob("client_rank*.json")} == {"client_rank0.json", "client_rank1.json"}
    assert len(list(ckpt.glob("zero_pp_rank_*_optim_states.pt"))) == 2  # each rank's optimizer shard


# --- interruption: one uninterrupted reference run, compared with killed and preempted ones ---------------

LONG = {"steps": 40, "eval_every": 10, "checkpoint_every": 10, "zero": 2}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    rd = make_run(tmp_path_factory.mktemp("reference"), **LONG)
    train(rd, wandb=WANDB)
    return rd


@pytest.mark.slow
def test_reference_run_is_complete_and_mirrored_to_wandb(reference: RunDir) -> None:
    check_complete_run(reference, steps=40, eval_every=10)
    offline = list(reference.wandb.glob("offline-run-*"))
    assert len(offline) == 1
    data = b"".join(p.read_bytes() for p in offline[0].glob("*.wandb"))
    assert len(data) > 2000
    for key in (b"train/loss", b"train/lr", b"eval/caption-en", b"eval/group/SC", b"eval/group/UC"):
        assert key in data, key


@pytest.mark.slow
def test_sigkill_and_restart_end_exactly_like_an_uninterrupted_run(tmp_path: Path, reference: RunDir) -> None:
    rd = make_run(tmp_path, **LONG)
    proc = start(rd)
    # Kill once the step-20 checkpoint is complete and some records after it exist: they must be redone once.
    wait_for(
        lambda: (
            20 in complete_steps(rd.checkpoints) and any(r.step > 20 for r in read_records(rd.losses).records)
        ),
        proc,
    )
    os.killpg(proc.pid, signal.SIGKILL)  # the trainer and its wandb service, as if the node died
    proc.wait()
    assert not rd.done.exists()

    out = train(rd, wandb=WANDB).stdout
    assert "resumed from checkpoint at step" in out
    recs = check_complete_run(rd, steps=40, eval_every=10)
    ref = records(reference)
    assert sorted(record_keys(recs)) == sorted(record_keys(ref)), "records duplicated or missing"
    mine, theirs = eval_losses(recs), eval_losses(ref)
    assert mine.keys() == theirs.keys()
    for key, loss in theirs.items():
        assert mine[key] == pytest.approx(loss, abs=1e-5), key
    train_ref = {r.step: r.loss for r in ref if r.kind == "train"}
    assert {r.step: r.loss for r in recs if r.kind == "train"} == pytest.approx(train_ref, abs=1e-5)


@pytest.mark.slow
def test_sigterm_checkpoints_exits_and_resumes(tmp_path: Path, reference: RunDir) -> None:
    rd = make_run(tmp_path, **LONG)
    proc = start(rd)
    wait_for(lambda: rd.losses.exists() and any(r.step >= 1 for r in read_records(rd.losses).records), proc)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0]
    took = time.monotonic() - t0
    assert proc.returncode == 75, out[-3000:]  # EXIT_PREEMPTED: checkpointed, requeue me
    assert took < 30, f"took {took:.1f} s to stop"
    saved = complete_steps(rd.checkpoints)
    assert saved and 1 <= saved[-1] < 40 and not rd.done.exists()

    train(rd, wandb=WANDB)
    recs = check_complete_run(rd, steps=40, eval_every=10)
    final = {k: v for k, v in eval_losses(recs).items() if k[0] == 40}
    ref = {k: v for k, v in eval_losses(records(reference)).items() if k[0] == 40}
    assert final == pytest.approx(ref, abs=1e-5)


@pytest.mark.slow
def test_half_written_checkpoint_is_ignored(tmp_path: Path, reference: RunDir) -> None:
    """A checkpoint without its COMPLETE marker (a save that was killed) never counts."""
    rd = make_run(tmp_path, **LONG)
    shutil.copytree(reference.checkpoints / "step00000030", rd.checkpoints / "step00000030")
    (rd.checkpoints / "step00000030" / COMPLETE).unlink()
    train(rd, wandb=WANDB)
    assert eval_losses(records(rd)) == pytest.approx(eval_losses(records(reference)), abs=1e-5)


# --- DONE and wandb failures (in this process) -----------------------------------------------------------


def test_done_makes_main_a_no_op(tmp_path: Path) -> None:
    from florenz_scaling.files import write_atomic
    from florenz_scaling.train.run import main

    rd = make_run(tmp_path)
    write_atomic(rd.done, "{}")
    assert main(rd.root) == 0
    assert sorted(p.name for p in rd.root.iterdir()) == ["DONE", "run.yaml"]


@pytest.fixture
def dist_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Distributed variables for an in-process run, undone afterwards (other tests start clean children)."""
    for var in DIST_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    monkeypatch.setenv("WANDB_MODE", "offline")


@pytest.mark.usefixtures("dist_env")
def test_wandb_failure_never_fails_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb

    from florenz_scaling.train.run import main

    def broken_init(*args, **kwargs):
        raise RuntimeError("wandb is down")

    monkeypatch.setattr(wandb, "init", broken_init)
    rd = make_run(tmp_path, steps=3, eval_every=3)
    assert main(rd.root) == 0
    check_complete_run(rd, steps=3, eval_every=3)
    log = (rd.logs / "train.log").read_text()
    assert log.count("wandb init failed (RuntimeError: wandb is down)") == 1


def test_tracker_swallows_every_wandb_error(caplog: pytest.LogCaptureFixture) -> None:
    """Logging calls that raise (a wandb run gone bad mid-training) are warned about once, never raised."""
    from florenz_scaling.train.observe import Tracker

    class BadRun:
        summary: dict = {}

        def log(self, *args, **kwargs):
            raise OSError("disk full")

        def finish(self, *args, **kwargs):
            raise OSError("disk full")

    tracker = Tracker()
    tracker._run = BadRun()
    for step in range(3):
        tracker.log({"train/loss": 1.0}, step)
    tracker.finish()
    assert tracker._run is None


@pytest.mark.slow
def test_run_starts_from_a_local_florence2_checkpoint(tmp_path: Path) -> None:
    import torch
    from checkpoint_dirs import florence2

    from florenz_scaling.spec.sizes import SIZES

    src = florence2(SIZES["T-0.2M"], seed=7)
    src.save_pretrained(tmp_path / "florence-2")
    rd = make_run(tmp_path, steps=3, pretrained=spec.Pretrained(florence=str(tmp_path / "florence-2")))
    assert "pretrained" in rd.run_yaml.read_text()
    proc = train(rd, wandb=WANDB)
    assert "tensors loaded" in proc.stdout + proc.stderr
    ckpt = rd.checkpoints / "step00000003" / "mp_rank_00_model_states.pt"
    state = torch.load(ckpt, weights_only=False)["module"]
    theirs = src.state_dict()
    for key, value in src.model.vision_tower.state_dict().items():  # frozen: still exactly the checkpoint's
        assert torch.equal(state[f"vision_tower.{key}"], value), key
    enc = "encoder.layers.0.fc1.weight"  # trained from the checkpoint's values, so close to them but moved
    start = theirs[f"model.language_model.{enc}"]
    assert not torch.equal(state[enc], start) and torch.allclose(state[enc], start, atol=0.05)


@pytest.mark.usefixtures("dist_env")
def test_two_runs_in_one_process_both_train(tmp_path: Path) -> None:
    # The debug executor trains runs one after another in the launching process: the second must not meet
    # the first's process group (DeepSpeed caches its groups; a stale one failed the second run's collective).
    from florenz_scaling.train.run import main

    first, second = make_run(tmp_path / "a", steps=2), make_run(tmp_path / "b", steps=2)
    assert main(first.root) == 0 and main(second.root) == 0
    assert first.done.exists() and second.done.exists()
