"""Process-group set-up for training: the same entry point as 1 process or N (torchrun, srun tasks).

torchrun and submitit's ``TorchDistributedEnvironment().export()`` (called by the launcher inside an srun
task) set the standard torch variables RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; a plain
``python -m florenz_scaling.cli train RUN_DIR`` sets none, and DeepSpeed would then try MPI discovery. So a
single process fills in defaults, with a free port so that concurrent runs on one machine do not collide.
"""

from __future__ import annotations

import os
import signal
import socket
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

# A run told to stop (SIGTERM/SIGUSR1: SLURM's preemption and time-limit warnings) checkpoints and exits with
# this code, so a launcher can tell "requeue me" from success (0) and failure (1); 75 = sysexits' EX_TEMPFAIL.
EXIT_PREEMPTED = 75
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job, and which device and collective backend it uses."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str  # "nccl" on GPU, "gloo" on CPU

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes records, logs to file, talks to wandb and marks checkpoints complete."""
        return self.rank == 0


def free_port() -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_distributed() -> DistEnv:
    """Read (or default) the torch distributed variables, pick device and backend, start the process group.

    Must run before ``deepspeed`` is first imported: ``DS_ACCELERATOR`` chooses its accelerator at import.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(free_port()))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cuda")
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        device, backend = torch.device("cuda", torch.cuda.current_device()), "nccl"
    else:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
        device, backend = torch.device("cpu"), "gloo"
    import deepspeed  # after DS_ACCELERATOR is set

    if not dist.is_initialized():
        deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False)
    return DistEnv(rank, world, local_rank, device, backend)


def shutdown_distributed() -> None:
    """End the process group so that a later run in this process (the debug executor, in-process tests)
    starts afresh. Through DeepSpeed when it started the group: torch's own call would leave DeepSpeed's
    cached groups pointing at the dead one, and the next run's first collective fails on them."""
    if not dist.is_initialized():
        return
    import deepspeed.comm as ds_comm

    if ds_comm.is_initialized():
        ds_comm.destroy_process_group()
    else:
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], env: DistEnv) -> list[float]:
    """Element-wise sum of small per-rank vectors (one collective); identity for a single process."""
    if env.world_size == 1:
        return list(values)
    dtype = torch.float64 if env.backend == "gloo" else torch.float32
    t = torch.tensor(values, dtype=dtype, device=env.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [float(x) for x in t.tolist()]


def barrier(env: DistEnv) -> None:
    """Wait for every rank (no-op for a single process)."""
    if env.world_size > 1:
        dist.barrier()


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
