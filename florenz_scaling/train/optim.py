"""Optimisation of a run: AdamW over the trainable parameters and the learning-rate schedules (cosine with
warm-up; warmup-stable-decay, whose branches continue their trunk's schedule exactly).

The planner (``plan.py``) decides where a WSD branch starts; ``decay_start`` reads that decision back from
the run's spec, so the schedule and the plan cannot disagree.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from florenz_scaling.spec import RunSpec, TrainSpec

# Short runs get at most this fraction of their steps as warm-up (100 warm-up steps in a 500-step paper run).
MAX_WARMUP_FRACTION = 0.2


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
