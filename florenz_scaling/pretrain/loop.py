"""What every pretraining stage shares: seeded scene streams of one split, AdamW with warm-up + cosine, a
plain training loop that logs, and a torch thread setting that is put back afterwards."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from florenz_scaling.data.world import Scene, sample_scene

log = logging.getLogger("florenz_scaling.pretrain")

# RNG stream ids of the components' scenes, apart from the Florenz streams (1-4 in data/): training scenes
# come from the train split, the components' own held-out numbers from the held-out split.
STREAMS = {"vision": 11, "florence": 12, "gemma": 13, "heldout": 19}
LOG_EVERY = 25


def scenes(seed: int, stream: str, split: str, start: int = 0) -> Iterator[Scene]:
    """Scene ``i`` = ``sample_scene(default_rng([seed, STREAMS[stream], i]), split)`` for i = start, ...: a
    pure function of (seed, stream, i); the train split never holds a held-out content key."""
    i = start
    while True:
        yield sample_scene(np.random.default_rng([seed, STREAMS[stream], i]), split)
        i += 1


def heldout_scenes(seed: int, n: int) -> list[Scene]:
    """The components' ``n`` held-out scenes (never seen by any pretraining stage)."""
    it = scenes(seed, "heldout", "heldout")
    return [next(it) for _ in range(n)]


def lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    """Linear warm-up over ``warmup`` steps (capped at a fifth of the run), then cosine to 0."""
    warmup = min(warmup, total // 5)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return factor


def train_loop(
    params: list[torch.nn.Parameter],
    loss_fn: Callable[[int], torch.Tensor],
    steps: int,
    lr: float,
    warmup: int,
    log_path: Path,
    what: str,
) -> dict[str, float]:
    """AdamW (weight decay 0.01 on matrices) over ``params`` for ``steps`` steps of ``loss_fn(step)``, grad
    norm clipped at 1; a JSON line per ``LOG_EVERY`` steps in ``log_path``. Returns timing numbers."""
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(warmup, steps))
    t0 = time.perf_counter()
    running: list[float] = []
    with open(log_path, "a", encoding="utf-8") as fh:
        for step in range(steps):
            loss = loss_fn(step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            running.append(float(loss.detach()))
            if (step + 1) % LOG_EVERY == 0 or step + 1 == steps:
                line = {
                    "stage": what,
                    "step": step + 1,
                    "loss": sum(running) / len(running),
                    "lr": sched.get_last_lr()[0],
                    "time_s": round(time.perf_counter() - t0, 3),
                }
                fh.write(json.dumps(line) + "\n")
                fh.flush()
                if (step + 1) % (4 * LOG_EVERY) == 0 or step + 1 == steps:
                    log.info("%s step %d/%d loss %.4f", what, step + 1, steps, line["loss"])
                running.clear()
    wall = time.perf_counter() - t0
    return {"train_s": round(wall, 2), "steps": steps, "steps_per_s": round(steps / max(wall, 1e-9), 2)}


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` intra-op threads (0 = leave as is), restoring the previous count afterwards."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tensors_to_cpu(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Contiguous CPU copies (what safetensors writes)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
