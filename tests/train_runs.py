"""Tiny trainer runs for the training, ZeRO-3, storage and checkpoint-trust tests (a helper module: test
modules import it, never each other): a run directory as the planner writes it, and the trainer run on it as
a child process (``florenz-scaling train``), as a job would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from florenz_scaling import spec
from florenz_scaling.files import RunDir
from florenz_scaling.train.process import free_port

CLI = str(Path(sys.executable).with_name("florenz-scaling"))
DIST_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def make_run(
    root: Path,
    *,
    steps: int = 6,
    zero: int = 0,
    world_size: int = 1,
    global_batch: int = 8,
    eval_every: int = 3,
    checkpoint_every: int = 3,
    keep: int = 2,
    pretrained: spec.Pretrained | None = None,
) -> RunDir:
    """A run directory as the planner writes it: <sweep>/runs/<run_id>/run.yaml."""
    train = spec.TrainSpec(
        lr=1e-3,
        warmup_steps=2,
        micro_batch=4,
        world_size=world_size,
        zero_stage=zero,
        eval_every=eval_every,
        checkpoint_every=checkpoint_every,
        keep_checkpoints=keep,
        threads=1,
    )
    run = spec.RunSpec(
        sweep="test-sweep",
        size="T-0.2M",
        steps=steps,
        global_batch=global_batch,
        train=train,
        data=spec.DataSpec(heldout_per_pair=4),
        pretrained=pretrained,
    )
    rd = RunDir(root / "runs" / run.run_id)
    rd.root.mkdir(parents=True)
    spec.dump_yaml(run, rd.run_yaml)
    return rd


def child_env(wandb: str = "disabled", **extra: str) -> dict[str, str]:
    """A trainer child's environment: no distributed variables of this process, a port of its own, and
    ``WANDB_MODE`` ``wandb`` (off unless the test checks the mirror: it costs each child about a second)."""
    env = {k: v for k, v in os.environ.items() if k not in DIST_VARS}
    env.update(WANDB_MODE=wandb, PYTHONUNBUFFERED="1", MASTER_PORT=str(free_port()), **extra)
    return env


def train(rd: RunDir, timeout: float = 240, wandb: str = "disabled") -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [CLI, "train", str(rd.root)], env=child_env(wandb), capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc
