"""Where everything lives in a sweep directory, and the one way files are written there.

OUT/sweep.yaml, plan.csv, ledger.jsonl, runs/<run_id>/..., data/, results.csv, fits/, plots/, report.html
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Errors that say something about the storage rather than the program: reported with the path and cause.
STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
}


# Third-party reference data (published scaling measurements, ScaleBench pools) is never part of the
# project: it is read from the shared data directory beside a source checkout, or from this variable.
REFERENCE_DATA_ENV = "FLORENZ_REFERENCE_DATA"


def reference_data(name: str) -> Path:
    """The path of reference data set ``name`` (a file or folder under the shared data directory).

    Raises ``FileNotFoundError`` saying where it looked and how to point elsewhere; tests and benchmarks turn
    that into a skip with the reason."""
    root = os.environ.get(REFERENCE_DATA_ENV)
    base = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "data"
    path = base / name
    if not path.exists():
        raise FileNotFoundError(
            f"reference data {name!r} not found at {path}: it is third-party data kept outside the project; "
            f"set {REFERENCE_DATA_ENV} to the directory that holds it"
        )
    return path


class StorageError(OSError):
    """A write failed because of the storage (full, over quota, read-only); the message names the path."""


def storage_error(e: OSError, path: str | Path) -> OSError:
    """``e`` as a ``StorageError`` naming ``path`` and the cause, or ``e`` itself for other errors."""
    if isinstance(e, StorageError) or e.errno not in STORAGE_ERRNOS:
        return e
    err = StorageError(e.errno, f"{STORAGE_ERRNOS[e.errno]}: {path}")
    err.filename = str(path)
    return err


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it is fsynced and renamed onto ``path``.

    Readers see the old file or the whole new one, never a part. On any failure (an exception, a full disk)
    the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise storage_error(e, path) from e
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise storage_error(e, path) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Busy(RuntimeError):
    """Another live process holds the lock (a concurrent launch, or a trainer already on this run)."""


@contextmanager
def exclusive_lock(path: str | Path, wait: bool = True, what: str = "") -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` for the ``with`` block.

    The kernel drops the lock when the holder exits or dies, so a killed process never leaves it stuck.
    With ``wait=False`` a lock held elsewhere raises ``Busy`` at once.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Busy(f"{what or path} is in use by another live process (lock {path})") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; see ``atomic_path``."""
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")


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
    def metrics_csv(self) -> Path:
        """Collected generation metrics: one row per (run, step, task, language, group, metric, decoding)."""
        return self.root / "metrics.csv"

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

    @property
    def launch_lock(self) -> Path:
        """Held from choosing the runs to submit until the ledger records them (one launch at a time)."""
        return self.root / ".launch.lock"


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
    def metrics(self) -> Path:
        """Scores of decoded held-out samples (``train.generate``), one JSON record per line."""
        return self.root / "metrics.jsonl"

    @property
    def examples(self) -> Path:
        """A few decoded held-out samples per pair and decoding, with their images (PNG, base64)."""
        return self.root / "examples.jsonl"

    @property
    def done(self) -> Path:
        return self.root / "DONE"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def trainer_lock(self) -> Path:
        """Held by the live trainer of this run (its rank 0), so a second one refuses to start."""
        return self.root / ".trainer.lock"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def wandb(self) -> Path:
        return self.root / "wandb"

    @property
    def sweep(self) -> SweepDir:
        return SweepDir(self.root.parent.parent)
