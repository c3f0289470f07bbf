"""The DeepSpeed side of a run: its precision and its DeepSpeed config (micro-batch × accumulation × world
size = the run's global batch, the ZeRO stage, clipping). The optimiser and schedules are ``train.optim``;
logs and the wandb mirror ``train.observe``; stop signals ``train.process``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from florenz_scaling.spec import RunSpec, TrainSpec

log = logging.getLogger("florenz_scaling.train.run")  # the run's logger: its handlers are the run's log


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
