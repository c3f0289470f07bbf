"""Where everything lives in a sweep directory: the one place that knows the layout.

OUT/sweep.yaml, plan.csv, ledger.jsonl, runs/<run_id>/..., data/, results.csv, fits/, plots/, report.html
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SweepDir:
    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def sweep_yaml(self) -> Path:
        return self.root / "sweep.yaml"

    @property
    def plan_csv(self) -> Path:
        return self.root / "plan.csv"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.jsonl"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run(self, run_id: str) -> RunDir:
        return RunDir(self.runs / run_id)

    @property
    def data(self) -> Path:
        """Shared prepared data (tokenizer, held-out sets), one sub-directory per data spec hash."""
        return self.root / "data"

    @property
    def jobs(self) -> Path:
        """submitit's job folder (pickles and SLURM logs)."""
        return self.root / "jobs"

    @property
    def results_csv(self) -> Path:
        return self.root / "results.csv"

    @property
    def results_parquet(self) -> Path:
        return self.root / "results.parquet"

    @property
    def conditioning_csv(self) -> Path:
        """Final held-out loss per pair next to the loss with images and prompts shuffled (``collect``)."""
        return self.root / "conditioning.csv"

    @property
    def fits(self) -> Path:
        return self.root / "fits"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def report(self) -> Path:
        return self.root / "report.html"


@dataclass(frozen=True)
class RunDir:
    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def run_yaml(self) -> Path:
        return self.root / "run.yaml"

    @property
    def losses(self) -> Path:
        return self.root / "losses.jsonl"

    @property
    def done(self) -> Path:
        return self.root / "DONE"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def wandb(self) -> Path:
        return self.root / "wandb"

    @property
    def sweep(self) -> SweepDir:
        return SweepDir(self.root.parent.parent)
