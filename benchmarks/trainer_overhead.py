"""Trainer overhead: training samples/s of the DeepSpeed trainer vs a bare PyTorch loop, in the same run.

Both sides train the same model (same seed), on the same pre-collated batches, with the same AdamW parameter
groups, cosine schedule and gradient clipping; the trainer side calls ``train.build_engine`` and
``train.train_step``, exactly what ``train.main`` runs each step. Steps alternate in rounds (bare, trainer,
bare, ...) so that load from other processes on the machine hits both alike. Target on CPU: ratio >= 0.90.
The GPU step (bf16 ZeRO-2, MFU) is ``benchmarks/gpu_step.py``.

    python benchmarks/trainer_overhead.py                 # CPU: T-3.7M, micro-batch 16, 30 timed steps
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from florenz_scaling.data import prepare
from florenz_scaling.model.florenz import build_model, token_loss
from florenz_scaling.spec import DataSpec, RunSpec, TrainSpec
from florenz_scaling.train.evaluate import model_inputs
from florenz_scaling.train.optim import make_optimizer, make_scheduler
from florenz_scaling.train.process import DistEnv, init_distributed
from florenz_scaling.train.run import build_engine, train_step


def bare_step_fn(run: RunSpec, device: torch.device) -> Callable[[dict[str, Any]], float]:
    """The baseline: a plain PyTorch training step on the same model, optimiser and schedule."""
    model = build_model(run.size, device=device, seed=run.seed)
    optimizer = make_optimizer(model, run.train)
    scheduler = make_scheduler(optimizer, run.train, run.steps)
    params = [p for p in model.parameters() if p.requires_grad]

    def step(batch: dict[str, Any]) -> float:
        loss = token_loss(model(**model_inputs(batch, device)), batch["labels"].to(device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, run.train.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def timed(step: Callable[[], float], n: int) -> tuple[float, list[float]]:
    """Seconds for ``n`` steps, and their losses."""
    t0 = time.perf_counter()
    losses = [step() for _ in range(n)]
    return time.perf_counter() - t0, losses


def cpu_benchmark(args: argparse.Namespace, env: DistEnv) -> float:
    """Print both throughputs and their ratio; returns the ratio."""
    mb = args.micro_batch
    total = args.warmup + args.steps
    run = RunSpec(
        sweep="bench",
        size=args.size,
        steps=total,
        global_batch=mb,
        train=TrainSpec(micro_batch=mb, warmup_steps=2, zero_stage=args.zero),
        data=DataSpec(),
    )
    with tempfile.TemporaryDirectory() as tmp:
        stream = prepare(run.data, tmp).train_stream(run.seed)
        batches = [stream.next_batch(mb) for _ in range(8)]  # pre-collated: data cost is not measured

    def cycle() -> Iterator[dict[str, Any]]:
        return itertools.cycle(batches)

    bare, bare_data = bare_step_fn(run, env.device), cycle()
    engine, ds_data = build_engine(run, env), cycle()
    sides: dict[str, Callable[[], float]] = {
        "bare": lambda: bare(next(bare_data)),
        "trainer": lambda: train_step(engine, lambda: next(ds_data))[0],
    }
    losses: dict[str, list[float]] = {k: [] for k in sides}
    seconds = dict.fromkeys(sides, 0.0)
    for name, step in sides.items():
        losses[name] += timed(step, args.warmup)[1]
    rounds = max(1, args.steps // args.round)
    for _ in range(rounds):
        for name, step in sides.items():
            dt, out = timed(step, args.round)
            seconds[name] += dt
            losses[name] += out
    rate = {k: rounds * args.round * mb / s for k, s in seconds.items()}
    ratio = rate["trainer"] / rate["bare"]
    diff = max(abs(a - b) for a, b in zip(losses["bare"], losses["trainer"], strict=True))
    print(
        f"{args.size}, micro-batch {mb}, ZeRO-{args.zero}, fp32, {torch.get_num_threads()} threads, "
        f"{rounds * args.round} timed steps per side after {args.warmup} warm-up steps"
    )
    print(f"bare PyTorch loop : {rate['bare']:8.1f} samples/s")
    print(f"DeepSpeed trainer : {rate['trainer']:8.1f} samples/s")
    print(f"ratio trainer/bare: {ratio:.3f}  (target >= 0.90)")
    print(f"same training: max |loss difference| over {len(losses['bare'])} steps = {diff:.2e}")
    return ratio


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="T-3.7M")
    p.add_argument("--micro-batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=30, help="timed steps per side")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps per side first")
    p.add_argument("--round", type=int, default=5, help="steps per side before switching sides")
    p.add_argument("--zero", type=int, default=0, choices=(0, 1, 2, 3))
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args()
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", os.path.expanduser("~/.cache/torch_extensions"))
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    env = init_distributed()
    if env.device.type == "cpu":
        cpu_benchmark(args, env)
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
