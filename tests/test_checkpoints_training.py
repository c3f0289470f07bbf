"""A run from either published Florence-2 layout trains the same model, and a killed one resumes exactly:
a run from each layout, killed after its step-10 checkpoint and restarted, ends with the losses of an
uninterrupted run from the native layout of the same weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from checkpoint_dirs import florence2, save_native, save_original

from florenz_scaling import spec
from florenz_scaling.files import RunDir
from florenz_scaling.results import read_records
from florenz_scaling.spec.sizes import SIZES
from florenz_scaling.train.checkpoint import complete_steps
from florenz_scaling.train.process import free_port

CLI = str(Path(sys.executable).with_name("florenz-scaling"))
STEPS = 20


def run_dir(root: Path, florence: Path) -> RunDir:
    train = spec.TrainSpec(
        lr=1e-3,
        warmup_steps=2,
        micro_batch=4,
        eval_every=10,
        checkpoint_every=10,
        keep_checkpoints=2,
        threads=1,
    )
    run = spec.RunSpec(
        sweep="layouts",
        size="T-0.5M",
        steps=STEPS,
        global_batch=8,
        train=train,
        data=spec.DataSpec(heldout_per_pair=4),
        pretrained=spec.Pretrained(florence=str(florence)),
    )
    rd = RunDir(root / "runs" / run.run_id)
    rd.root.mkdir(parents=True)
    spec.dump_yaml(run, rd.run_yaml)
    return rd


def env() -> dict[str, str]:
    drop = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    out = {k: v for k, v in os.environ.items() if k not in drop}
    return out | {"WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1", "MASTER_PORT": str(free_port())}


def losses(rd: RunDir) -> dict[tuple, float]:
    recs = read_records(rd.losses).records
    return {(r.kind, r.step, r.task, r.lang): r.loss for r in recs if r.kind in ("eval", "train")}


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("weights")
    src = florence2(SIZES["T-0.5M"], seed=11)
    return save_native(src, root / "native"), save_original(src, root / "original")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, weights: tuple[Path, Path]) -> RunDir:
    """An uninterrupted run from the native layout."""
    rd = run_dir(tmp_path_factory.mktemp("reference"), weights[0])
    done = subprocess.run([CLI, "train", str(rd.root)], env=env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stdout + done.stderr
    assert "loaded (florence2-native)" in log and "vocabulary switch:" in log
    return rd


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["native", "original"])
def test_a_run_from_either_layout_killed_and_resumed_ends_like_the_uninterrupted_one(
    tmp_path: Path, weights: tuple[Path, Path], reference: RunDir, layout: str
) -> None:
    rd = run_dir(tmp_path, weights[0] if layout == "native" else weights[1])
    proc = subprocess.Popen(
        [CLI, "train", str(rd.root)],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    t0 = time.monotonic()
    while not (10 in complete_steps(rd.checkpoints) and any(k[1] > 10 for k in losses(rd))):
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.monotonic() - t0 < 240, "the trainer never reached step 10"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not rd.done.exists()
    again = subprocess.run([CLI, "train", str(rd.root)], env=env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    log = again.stdout + again.stderr
    assert f"loaded (florence2-{layout})" in log and "resumed from checkpoint at step 10" in log
    mine, theirs = losses(rd), losses(reference)
    assert mine.keys() == theirs.keys() and any(k[0] == "eval" and k[1] == STEPS for k in mine)
    for key, loss in theirs.items():
        assert mine[key] == pytest.approx(loss, abs=1e-5), key
