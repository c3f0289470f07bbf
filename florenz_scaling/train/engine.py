"""The trainer's supporting cast, kept out of ``train.py`` so that it reads as the training story.

Optimiser parameter groups, the learning-rate schedule, the DeepSpeed config, logging, the preemption flag and
a wandb mirror that can never fail a run.
"""

from __future__ import annotations

import logging
import math
import os
import re
import signal
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from florenz_scaling.spec import RunSpec, TrainSpec

log = logging.getLogger("florenz_scaling.train.run")

# A run told to stop (SIGTERM/SIGUSR1: SLURM's preemption and time-limit warnings) checkpoints and exits with
# this code, so a launcher can tell "requeue me" from success (0) and failure (1); 75 = sysexits' EX_TEMPFAIL.
EXIT_PREEMPTED = 75
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
# Short runs get at most this fraction of their steps as warm-up (100 warm-up steps in a 500-step paper run).
MAX_WARMUP_FRACTION = 0.2


# --- optimisation ------------------------------------------------------------------------------------------


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters only, split so that biases, norms and gates (anything 1-D) get no weight decay."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, t: TrainSpec) -> torch.optim.Optimizer:
    """torch's AdamW: DeepSpeed's fused/CPU Adams need a long JIT build and only pay off with offload."""
    groups = [g for g in param_groups(model, t.weight_decay) if g["params"]]
    return torch.optim.AdamW(groups, lr=t.lr, betas=t.betas, eps=t.eps, weight_decay=t.weight_decay)


def warmup_steps(t: TrainSpec, total_steps: int) -> int:
    """The spec's warm-up, capped for very short runs so that they still spend most steps on the cosine."""
    return min(t.warmup_steps, int(MAX_WARMUP_FRACTION * total_steps))


def lr_factor(step: int, warmup: int, total_steps: int, min_ratio: float) -> float:
    """Multiplier of the peak lr for 0-based optimizer step ``step``: linear warm-up, then cosine to
    ``min_ratio`` at ``total_steps`` (the schedule is sized to this run, as each paper run has its own)."""
    if step < warmup:
        return (step + 1) / warmup  # step 0 already learns (HF's step/warmup wastes it at lr 0)
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def wsd_factor(
    step: int, warmup: int, decay_start: int, total_steps: int, final_ratio: float, shape: str
) -> float:
    """Warmup-stable-decay multiplier for 0-based step ``step``: linear warm-up, the peak lr, then from
    ``decay_start`` a decay shaped linear, cosine or 1-sqrt to ``final_ratio`` at ``total_steps``. The
    factor at a step depends only on the step and the decay window, so a branch that loads its trunk's
    checkpoint at ``decay_start`` continues the trunk's schedule exactly."""
    if step >= decay_start:
        p = min(1.0, (step - decay_start) / max(1, total_steps - decay_start))
        g = {"linear": 1.0 - p, "cosine": 0.5 * (1.0 + math.cos(math.pi * p)), "1-sqrt": 1.0 - math.sqrt(p)}
        return final_ratio + (1.0 - final_ratio) * g[shape]
    if step < warmup:
        return (step + 1) / warmup
    return 1.0


def decay_start(run: RunSpec) -> int:
    """Where a WSD run's decay begins: never for a trunk, at its start for a branch (the planner put the
    branch point there), else over the last ``decay_fraction`` of the run, rounded as the planner rounds."""
    if run.trunk:
        return run.steps
    if run.start_from is not None:
        return run.start_step
    return run.steps - max(1, round(run.train.decay_fraction * run.steps))


def make_scheduler(
    optimizer: torch.optim.Optimizer, t: TrainSpec, total_steps: int, decay_from: int | None = None
) -> torch.optim.lr_scheduler.LambdaLR:
    """The run's ``LambdaLR`` (cosine with warm-up, or WSD decaying from ``decay_from``); DeepSpeed steps it
    once per optimizer step and checkpoints it."""
    if t.schedule == "wsd":
        # Uncapped warm-up: trunk segments and branches of different lengths must share one schedule.
        if decay_from is None:
            decay_from = total_steps - max(1, round(t.decay_fraction * total_steps))
        start = decay_from
        warm, ratio, shape = t.warmup_steps, t.min_lr_ratio, t.decay_shape
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: wsd_factor(s, warm, start, total_steps, ratio, shape)
        )
    warmup = warmup_steps(t, total_steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, warmup, total_steps, t.min_lr_ratio)
    )


def resolve_precision(t: TrainSpec, on_gpu: bool) -> str:
    """fp32 on CPU; on GPU the requested precision, with ``auto`` = bf16 where supported, else fp16."""
    if not on_gpu:
        if t.precision not in ("auto", "fp32"):
            log.warning("precision %s asked for on CPU; training in fp32", t.precision)
        return "fp32"
    if t.precision == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return t.precision


def deepspeed_config(run: RunSpec, precision: str) -> dict[str, Any]:
    """The DeepSpeed config of a run: micro-batch × accumulation × world size = the run's global batch."""
    t = run.train
    return {
        "train_micro_batch_size_per_gpu": t.micro_batch,
        "gradient_accumulation_steps": run.grad_accum,
        "train_batch_size": run.global_batch,
        "gradient_clipping": t.grad_clip,
        "zero_optimization": {"stage": t.zero_stage},
        "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": precision == "fp16", "initial_scale_power": 16},
        "steps_per_print": 10**9,  # we log ourselves
        "wall_clock_breakdown": False,
        "zero_allow_untested_optimizer": True,  # torch AdamW under ZeRO: tested here, on every stage
    }


# --- logging -----------------------------------------------------------------------------------------------


def setup_logging(log_file: Path | None) -> None:
    """Rank 0 logs INFO to stdout and ``log_file``; other ranks (``log_file`` None) only warnings."""
    log.handlers.clear()
    log.propagate = False
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    for h in handlers:
        h.setFormatter(fmt)
        log.addHandler(h)
    log.setLevel(logging.INFO if log_file is not None else logging.WARNING)
    # DeepSpeed prints its config and every init detail at INFO; keep its warnings only.
    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)


def close_logging() -> None:
    """Close the log file (a later run in the same process opens its own)."""
    for h in list(log.handlers):
        h.close()
        log.removeHandler(h)


# --- preemption --------------------------------------------------------------------------------------------


class StopFlag:
    """Set by SIGTERM/SIGUSR1; the loop checkpoints at the next step boundary and exits with EXIT_PREEMPTED.

    A handler may run at any bytecode, e.g. half-way through a DeepSpeed collective, so it only sets a flag.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __bool__(self) -> bool:
        return self.signal is not None

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signal = signum

    def install(self) -> StopFlag:
        """Take over the stop signals (only possible from the main thread)."""
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        """Give the signals back to whoever handled them before (e.g. submitit's own handler)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


# --- wandb -------------------------------------------------------------------------------------------------


class Tracker:
    """One wandb run per training run, as a mirror of ``losses.jsonl``: any wandb error is logged once as a
    warning and never reaches training (wandb may be missing, misconfigured or offline-unreachable)."""

    def __init__(self) -> None:
        self._run: Any = None
        self._warned = False

    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - by design: wandb must never fail a run
            if not self._warned:
                log.warning(
                    "wandb %s failed (%s: %s); training continues without it", what, type(e).__name__, e
                )
                self._warned = True
            return None

    def start(self, run: RunSpec, run_id: str, directory: Path) -> Tracker:
        """``directory`` is the run directory: wandb itself adds the ``wandb/`` level below it."""
        # Open (after a restart: resume) the run's wandb run; env WANDB_MODE overrides the spec's mode.
        mode = os.environ.get("WANDB_MODE") or run.wandb.mode
        if mode == "disabled":
            return self

        def init() -> Any:
            import wandb

            directory.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return wandb.init(
                    project=run.wandb.project,
                    entity=run.wandb.entity,
                    name=run_id,
                    group=run.sweep,
                    id=re.sub(r"[^A-Za-z0-9_-]", "_", f"{run.sweep}-{run_id}"),
                    resume="allow",
                    config=run.to_dict(),
                    dir=str(directory),
                    mode=mode,
                    reinit="create_new",
                    settings=wandb.Settings(console="off", quiet=True),
                )

        self._run = self._guard("init", init)
        return self

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Mirror metrics at an optimizer step."""
        if self._run is not None:
            self._guard("log", lambda: self._run.log(metrics, step=step))

    def summary(self, values: dict[str, Any]) -> None:
        """Final values shown in the wandb run table."""
        if self._run is not None:
            self._guard("summary", lambda: self._run.summary.update(values))

    def finish(self, exit_code: int = 0) -> None:
        """Close the wandb run (offline: flushes the .wandb file)."""
        if self._run is not None:
            self._guard("finish", lambda: self._run.finish(exit_code=exit_code))
            self._run = None


def eval_metrics(records: Iterable[Any]) -> dict[str, float]:
    """wandb keys for eval records: ``eval/<task>-<lang>`` per pair and ``eval/group/<G>`` per group."""
    from florenz_scaling.train.evaluate import group_means

    records = list(records)
    out = {f"eval/{r.task}-{r.lang}": r.loss for r in records}
    out.update({f"eval/group/{g}": v for g, v in group_means(records).items()})
    return out
