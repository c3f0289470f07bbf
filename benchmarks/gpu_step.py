"""One training step of a paper size on one GPU, as a real run takes it: bf16, DeepSpeed ZeRO-2, the paper's
sample (224² image, 128 prompt + 128 target tokens), from random init or a local checkpoint.

Prints samples/s, achieved model TFLOP/s (6 × F per sample: forward + backward ≈ 3 forwards, 2 FLOPs per
MAC), peak GPU memory, and two ratios measured against the same device: MFU against the datasheet's dense
bf16 peak, and the fraction of a large bf16 matmul's throughput measured in this run (the device's
practical peak). On a machine without CUDA it says so and, with ``--cpu-smoke``, runs the same path on a
tiny size in fp32 to show the script works.

    python benchmarks/gpu_step.py [--size F-0.4B] [--florence DIR] [--micro-batch 16] [--steps 10]
    python benchmarks/gpu_step.py --cpu-smoke          # no GPU: T-0.5M, fp32, 3 steps
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from florenz_scaling.model.florenz import dummy_batch
from florenz_scaling.spec import DataSpec, Pretrained, RunSpec, TrainSpec
from florenz_scaling.spec.sizes import get_size
from florenz_scaling.train.process import init_distributed
from florenz_scaling.train.run import build_engine, train_step

# Dense bf16 peak (TFLOP/s) of the GPUs this project runs on; others need --peak-tflops.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def matmul_tflops(device: torch.device, dtype: torch.dtype, n: int, reps: int) -> float:
    """Throughput of an n×n×n matmul on ``device``: the baseline the step is compared with."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="F-0.4B")
    p.add_argument("--florence", help="local Florence-2 checkpoint (either layout); default random init")
    p.add_argument("--micro-batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--cpu-smoke", action="store_true", help="no GPU: run the path on T-0.5M in fp32")
    args = p.parse_args()
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", os.path.expanduser("~/.cache/torch_extensions"))
    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu_smoke:
        print("skipped: no CUDA device on this machine (bf16 ZeRO-2 step, TFLOP/s and MFU not measured)")
        return
    size = get_size(args.size if cuda else "T-0.5M")
    steps, mb = (args.steps, args.micro_batch) if cuda else (3, 4)
    precision = "bf16" if cuda else "fp32"
    env = init_distributed()
    run = RunSpec(
        sweep="bench",
        size=size.name,
        steps=steps + 3,
        global_batch=mb,
        train=TrainSpec(micro_batch=mb, zero_stage=2, precision=precision),
        data=DataSpec(),
        pretrained=Pretrained(florence=args.florence) if args.florence else None,
    )
    engine = build_engine(run, env)
    batch = dummy_batch(size, mb, env.device)  # the paper's sample at its sizes
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    for _ in range(3):
        train_step(engine, lambda: batch)
    sync(env.device)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step(engine, lambda: batch)
    sync(env.device)
    rate = steps * mb / (time.perf_counter() - t0)
    achieved = 3 * 2 * size.fwd_gmacs * 1e9 * rate / 1e12
    dtype = torch.bfloat16 if cuda else torch.float32
    baseline = matmul_tflops(env.device, dtype, 8192 if cuda else 1024, 20 if cuda else 5)
    name = torch.cuda.get_device_name() if cuda else "CPU"
    print(
        f"{size.name} {precision} ZeRO-2 on {name}: micro-batch {mb}, {rate:.1f} samples/s, "
        f"{achieved:.2f} TFLOP/s (model FLOPs = 6 × {size.fwd_gmacs:.3g} GMACs per sample), "
        f"{'checkpoint ' + args.florence if args.florence else 'random init'}"
    )
    if cuda:
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    print(
        f"ratio to a {dtype} matmul measured in this run ({baseline:.2f} TFLOP/s): {achieved / baseline:.3f}"
    )
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    if cuda and peak:
        print(f"MFU: {achieved / peak:.1%} of {peak:.0f} TFLOP/s dense bf16 peak")
    elif cuda:
        print("MFU: unknown peak for this GPU; pass --peak-tflops")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
