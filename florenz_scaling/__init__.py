"""florenz-scaling: scaling-law studies of Florenz vision-language models, one stage per package.

    sweeps/*.yaml ─▶ spec ─▶ plan ─▶ launch ─▶ train (model, data) ─▶ results ─▶ fit ─▶ plot / report
                                       │                                   ▲        │
                                       └─ SLURM (submitit) │ local │ debug  │        └─▶ design ─▶ plan
                                                            any CSV of (N, D, C, loss)

Every arrow is a file in the sweep directory (``files``): sweep.yaml and plan.csv, ledger.jsonl, each run's
run.yaml, checkpoints and records (losses.jsonl, metrics.jsonl), the collected results.csv and metrics.csv,
fits/, plots/ and report.html, so each stage can be rerun alone. ``tests/test_layering.py`` holds which
package may import which; ``cli`` (the ``florenz-scaling`` command) sits on top.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("florenz-scaling")
except PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0+unknown"

__all__ = ["__version__"]
