"""How much of the CPU the trainer uses on the demo sizes: its training FLOP/s against a big matmul's.

For each size, the DeepSpeed trainer (``train.build_engine`` + ``train.train_step``, what ``train.main`` runs
each step) trains on pre-collated batches of the size's own image size; its FLOP/s count the plan's training
FLOPs per sample, 2·F·(1 + 2·P_t/P) (forward, and backward through what trains: ``plan.est_gpu_hours``). The
CPU's peak is a 1024² fp32 matmul on the same threads, timed before and after each size (load from other
processes hits both alike). Prints per size: samples/s, achieved GFLOP/s, peak GFLOP/s and their ratio.

    python benchmarks/cpu_peak_fraction.py             # the demo's TS-0.7M, TS-1.3M, TS-3.4M on 1 thread
    python benchmarks/cpu_peak_fraction.py --sizes T-0.5M T-1.3M T-3.7M     # the ladder before (64²)
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time

import torch

from florenz_scaling.data import prepare
from florenz_scaling.spec import DataSpec, RunSpec, TrainSpec
from florenz_scaling.spec.sizes import get_size
from florenz_scaling.train.process import init_distributed
from florenz_scaling.train.run import build_engine, train_step


def matmul_gflops(n: int = 1024, seconds: float = 2.0) -> float:
    """fp32 GFLOP/s of ``n``×``n`` matmuls repeated for about ``seconds``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def trainer_rate(size: str, micro_batch: int, steps: int, warmup: int) -> float:
    """Training samples/s of the trainer on ``size``."""
    s = get_size(size)
    run = RunSpec(
        sweep="bench",
        size=size,
        steps=steps + warmup,
        global_batch=micro_batch,
        train=TrainSpec(micro_batch=micro_batch, warmup_steps=2, precision="fp32"),
        data=DataSpec(image_size=s.image_size),
    )
    with tempfile.TemporaryDirectory() as tmp:
        stream = prepare(run.data, tmp).train_stream(run.seed)
        batches = itertools.cycle([stream.next_batch(micro_batch) for _ in range(8)])
    engine = build_engine(run, init_distributed())
    for _ in range(warmup):
        train_step(engine, lambda: next(batches))
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step(engine, lambda: next(batches))
    return steps * micro_batch / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["TS-0.7M", "TS-1.3M", "TS-3.4M"])
    p.add_argument("--micro-batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch threads (the demo's runs use 1)")
    args = p.parse_args()
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", os.path.expanduser("~/.cache/torch_extensions"))
    torch.set_num_threads(args.threads)
    print(
        f"{args.threads} thread(s), micro-batch {args.micro_batch}, fp32, {args.steps} timed steps per size"
    )
    print(f"{'size':<9} {'samples/s':>10} {'GFLOP/s':>9} {'peak':>7} {'fraction':>9}")
    for size in args.sizes:
        s = get_size(size)
        before = matmul_gflops()
        rate = trainer_rate(size, args.micro_batch, args.steps, args.warmup)
        peak = (before + matmul_gflops()) / 2
        achieved = rate * 2 * s.fwd_gmacs * (1 + 2 * s.trainable_params / s.params)
        print(f"{size:<9} {rate:>10.1f} {achieved:>9.2f} {peak:>7.1f} {achieved / peak:>9.3f}")
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
