"""Submit, track and cancel a sweep's runs (submitit on SLURM, or local processes); never imports torch.

``submit.submissions`` is the one list of what a launch submits; ``--dry-run`` prints that list.
``status.sweep_status`` is the one run-state function that ``status``, ``run`` and ``report`` use.
"""

from florenz_scaling.launch.ledger import Event, Ledger, RunHistory, histories
from florenz_scaling.launch.status import RunStatus, format_status, sweep_status
from florenz_scaling.launch.submit import LaunchError, LaunchResult, cancel, launch

__all__ = [
    "Event",
    "LaunchError",
    "LaunchResult",
    "Ledger",
    "RunHistory",
    "RunStatus",
    "cancel",
    "format_status",
    "histories",
    "launch",
    "sweep_status",
]
