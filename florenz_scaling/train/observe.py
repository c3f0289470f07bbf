"""What a run tells the outside world besides its records: its log (rank 0: stdout and ``logs/train.log``)
and a wandb mirror of ``losses.jsonl`` that can never fail a run."""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from florenz_scaling.spec import RunSpec

log = logging.getLogger("florenz_scaling.train.run")  # the run's logger: setup_logging gives it handlers


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
