"""The callables that submitit runs on the workers (they must live in the installed package to unpickle).

``TrainJob`` is one run per job (one SLURM array task); ``SlotJob`` runs a list of runs one after another (the
``local`` executor starts ``array_parallelism`` of them, since it has no queue of its own). Both are
``submitit.helpers.Checkpointable``: on preemption or timeout SLURM signals the job, submitit calls
``checkpoint`` and requeues the returned ``DelayedSubmission``, and the requeued job resumes the run from its
own checkpoint (``train.main`` is idempotent: it resumes, and does nothing once ``DONE`` exists).

Each job appends ``started``/``requeued``, ``finished`` or ``failed`` (with the error and its log path) to the
sweep's ledger. ``sleep_run`` is a trivial run body for launcher tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import submitit
from submitit.core.utils import DelayedSubmission

from florenz_scaling.files import RunDir
from florenz_scaling.launch.ledger import Ledger

DEFAULT_ENTRY = "florenz_scaling.train:main"


def resolve_entry(entry: str) -> Callable[[Path], Any]:
    """``"package.module:function"`` -> the function (imported lazily, on the worker)."""
    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name or "main")


def _export_distributed(env: submitit.JobEnvironment | None) -> None:
    """Torch distributed variables for a multi-task job: its srun tasks form one process group. A single
    process is left to the trainer, which defaults RANK/WORLD_SIZE and picks a free port itself."""
    if env is not None and env.num_tasks > 1:
        # overwrite: a RANK left in the submitting shell's environment must not win over the task's own.
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)


def _job_env() -> submitit.JobEnvironment | None:
    try:
        env = submitit.JobEnvironment()
        env.job_id  # noqa: B018 - raises KeyError outside a submitit job
        return env
    except (RuntimeError, KeyError):
        return None


def _log_path(env: submitit.JobEnvironment | None) -> str:
    try:
        return str(env.paths.stdout) if env is not None else ""
    except KeyError:  # the debug executor runs in-process without a job folder in the environment
        return ""


def _chain_preemption(state: dict[str, Any]) -> None:
    """Let the trainer checkpoint before submitit requeues: submitit's USR2 handler would requeue and exit at
    once, losing the steps since the last periodic checkpoint. Ours asks the trainer to stop (its SIGUSR1
    handler checkpoints and returns) and runs submitit's handler after ``train.main`` returned."""
    try:
        usr = signal.Signals[f"SIG{os.environ.get('SUBMITIT_PREEMPT_SIGNAL', 'USR2')}"]
    except KeyError:
        return
    original = signal.getsignal(usr)
    if not callable(original):
        return

    def on_preempt(signum: int, frame: Any) -> None:
        state["preempted"] = (original, signum, frame)
        trainer = signal.getsignal(signal.SIGUSR1)
        if callable(trainer) and trainer is not on_preempt:
            trainer(signal.SIGUSR1, frame)
        else:  # the trainer has not installed its handler yet: nothing to save, requeue now
            original(signum, frame)

    signal.signal(usr, on_preempt)


def run_one(entry: str, run_dir: str | Path, executor: str) -> str:
    """Run one training run in this task; returns "done" or "interrupted". Raises the run's error.

    ``train.main`` returns 0 when the run is complete and EXIT_PREEMPTED (75) when a signal made it checkpoint
    and stop; DONE on disk is what counts, so any other entry point works the same way.
    """
    rd = RunDir(run_dir)
    run_id = rd.root.name
    env = _job_env()
    rank0 = env is None or env.global_rank == 0
    job_id = env.job_id if env is not None else ""
    log = _log_path(env)
    ledger = Ledger(rd.sweep.ledger)
    info = {"job_id": job_id, "executor": executor, "log": log}
    if rank0:
        restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
        ledger.record("requeued" if restarts else "started", run_id, restarts=restarts, **info)
    if rd.done.exists():
        if rank0:
            ledger.record("finished", run_id, **info)
        return "done"
    _export_distributed(env)
    state: dict[str, Any] = {}
    if env is not None and executor != "debug":
        _chain_preemption(state)
    try:
        resolve_entry(entry)(rd.root)
    except Exception as e:
        if rank0:
            tb = traceback.format_exc(limit=-3)
            ledger.record("failed", run_id, error=f"{type(e).__name__}: {e}", traceback=tb, **info)
        raise
    if rd.done.exists():
        if rank0:
            ledger.record("finished", run_id, **info)
        return "done"
    if "preempted" in state:
        original, signum, frame = state["preempted"]
        original(signum, frame)  # submitit: checkpoint() + requeue + exit
    # Stopped by a signal (scancel, scontrol requeue): SLURM requeues or the ledger says cancelled; no event.
    return "interrupted"


class TrainJob(submitit.helpers.Checkpointable):
    """One run per job; what each SLURM array task executes."""

    def __init__(self, entry: str = DEFAULT_ENTRY, executor: str = "slurm") -> None:
        self.entry = entry
        self.executor = executor

    def __call__(self, run_dir: str) -> str:
        return run_one(self.entry, run_dir, self.executor)

    def checkpoint(self, run_dir: str) -> DelayedSubmission:
        """Requeue the same run: it resumes from its latest checkpoint."""
        return DelayedSubmission(TrainJob(self.entry, self.executor), run_dir)


class SlotJob(submitit.helpers.Checkpointable):
    """Several runs, one after another, in one job (a slot of the ``local`` executor).

    Each run gets a fresh child process, as it would get on SLURM: a trainer's process-wide state (torch
    distributed groups, DeepSpeed's accelerator, threads) does not carry over to the next run. The slot
    forks each child; on a machine without GPUs it imports the entry point first, so that a run does not pay
    the imports again (torch and the model code: ~5 s of CPU each); nothing is initialised before the fork.
    Stop signals are forwarded to the child, and a run stopped by one stops the slot.
    """

    def __init__(self, entry: str = DEFAULT_ENTRY, executor: str = "local") -> None:
        self.entry = entry
        self.executor = executor

    def __call__(self, run_dirs: list[str]) -> list[str]:
        results, failed = [], []
        _preload(self.entry)
        for rd in run_dirs:
            outcome = _run_child(self.entry, rd, self.executor)
            results.append(outcome)
            if outcome == "interrupted":
                break  # a signal stopped the run (cancel, timeout): the slot stops too, its other runs wait
            if outcome == "failed":  # one failed run must not starve the runs queued behind it
                failed.append(Path(rd).name)
        if failed:
            raise RuntimeError(f"runs failed (errors in the ledger): {', '.join(failed)}")
        return results

    def checkpoint(self, run_dirs: list[str]) -> DelayedSubmission:
        """Requeue the whole slot; finished runs are skipped (DONE), the interrupted one resumes."""
        return DelayedSubmission(SlotJob(self.entry, self.executor), run_dirs)


GPU_DEVICES = ("/dev/nvidiactl", "/dev/kfd")  # NVIDIA's and AMD's driver devices


def _preload(entry: str) -> None:
    """Import ``entry`` in the slot for its forked children to inherit: on Linux without GPUs only, since
    elsewhere an import might start the GPU driver (or a macOS framework), which a forked child cannot use.
    An entry that cannot be imported fails in each run's child instead, recorded as that run's error."""
    if sys.platform != "linux" or any(os.path.exists(d) for d in GPU_DEVICES):
        return
    with contextlib.suppress(Exception):
        resolve_entry(entry)


# The signals a fresh process starts with at their defaults (the slot's are submitit's and ours).
CHILD_DEFAULTS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT)
FORWARDED = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


def _child(entry: str, run_dir: str, executor: str, mask: set[signal.Signals]) -> None:
    """The forked child: a fresh process's signal handlers and ``mask``, then ``run_one``; never returns."""
    code = 1
    try:
        for sig in CHILD_DEFAULTS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        run_one(entry, run_dir, executor)
        code = 0
    except BaseException:  # noqa: BLE001 - the child reports every error, and exits 1
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # never return into the slot's code, nor run its exit handlers


def _run_child(entry: str, run_dir: str, executor: str) -> str:
    """``run_one`` in a child process forked from this one; returns "done", "interrupted" or "failed".

    The stop signals are blocked across the fork, so that none reaches the child before it has a fresh
    process's handlers, nor the slot before its handlers forward to the child."""
    preempted: list[Any] = []
    sys.stdout.flush()
    sys.stderr.flush()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {*CHILD_DEFAULTS, *FORWARDED})
    pid = os.fork()
    if pid == 0:
        _child(entry, run_dir, executor, mask)

    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    def on_preempt(signum: int, frame: Any) -> None:
        # submitit's timeout signal: the trainer checkpoints on SIGUSR1; submitit requeues once it returned.
        preempted.append((signum, frame))
        forward(signal.SIGUSR1, frame)

    try:
        previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
        previous[signal.SIGUSR2] = signal.signal(signal.SIGUSR2, on_preempt)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # what came meanwhile is forwarded now
    try:
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if RunDir(run_dir).done.exists():
        return "done"
    original = previous[signal.SIGUSR2]
    if preempted and callable(original):
        original(*preempted[0])  # submitit: checkpoint() + requeue + exit
    return "interrupted" if code in (0, 75) else "failed"


if __name__ == "__main__":  # one run as a slot's child runs it, in a process of its own (for debugging)
    try:
        run_one(sys.argv[1], sys.argv[2], sys.argv[3])
    except Exception:
        traceback.print_exc()
        sys.exit(1)
