"""Submit, track and cancel a sweep's runs (submitit on SLURM, or local processes); never imports torch.

``submit.submissions`` is the one list of what a launch submits; ``launch`` submits it and ``--dry-run``
(``dryrun.format_dry_run``) prints it. ``status.sweep_status`` is the one run-state function that ``status``,
``run`` and ``report`` use, and ``ledger`` the one reader and writer of ``ledger.jsonl``.
"""

from florenz_scaling.launch.cancel import cancel
from florenz_scaling.launch.dryrun import format_dry_run
from florenz_scaling.launch.ledger import Event, Ledger, RunHistory, histories
from florenz_scaling.launch.status import RunStatus, format_status, sweep_status
from florenz_scaling.launch.submit import LaunchError, LaunchResult, Submission, launch, submissions

__all__ = [
    "Event",
    "LaunchError",
    "LaunchResult",
    "Ledger",
    "RunHistory",
    "RunStatus",
    "Submission",
    "cancel",
    "format_dry_run",
    "format_status",
    "histories",
    "launch",
    "submissions",
    "sweep_status",
]
