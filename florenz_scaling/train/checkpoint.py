"""Checkpoints that count only once complete, and the per-rank state that makes a resume exact.

Layout under ``runs/<id>/checkpoints/``::

    step00000040/          DeepSpeed's files for the tag (model, optimizer and scheduler states, per rank)
      client_rank0.json    this rank's data-stream position and RNG states (ours; one file per rank, because
                           DeepSpeed stores ``client_state`` only in data-parallel rank 0's model file)
      MANIFEST.json        size and SHA-256 of every file of the tag, with this user's HMAC (``manifest``)
      COMPLETE             JSON {step, ...}, written atomically by rank 0 after every rank has finished
    latest                 the newest complete tag (DeepSpeed's convention, for ``zero_to_fp32.py``)

A save killed half-way leaves a tag directory without ``COMPLETE``: it is ignored on resume and removed.

What is trusted: our own state is JSON (no pickle), and every ``torch.load`` of ours is ``weights_only``. But
DeepSpeed reads its own files with ``torch.load(weights_only=False)``, which runs whatever code a crafted
pickle holds. So before DeepSpeed may open a checkpoint, every file in it must match the manifest this user
signed when saving it, with a key that lives outside the run directory (``manifest.key_path``): a
checkpoint copied in from elsewhere, or altered, is refused, never loaded.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from florenz_scaling.files import StorageError, storage_error, write_atomic
from florenz_scaling.train import manifest
from florenz_scaling.train.process import DistEnv, barrier

COMPLETE = "COMPLETE"
_LOW_SPACE = 64 * 2**20  # below this, a failed save is taken to be a full disk
_TAG = re.compile(r"^step(\d{8})$")


def tag_for(step: int) -> str:
    """Checkpoint tag of an optimizer step; zero-padded so names sort by step."""
    return f"step{step:08d}"


def rng_state() -> dict[str, Any]:
    """Every RNG a training step may draw from (Python, NumPy's global, torch CPU and CUDA), as plain JSON."""
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(words), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` captured."""
    version, words, gauss = state["python"]
    random.setstate((version, tuple(words), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def _client_file(root: Path, tag: str, rank: int) -> Path:
    return root / tag / f"client_rank{rank}.json"


def complete_steps(root: Path) -> list[int]:
    """Steps of the complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    steps = []
    for d in root.iterdir():
        m = _TAG.match(d.name)
        if m and (d / COMPLETE).is_file():
            steps.append(int(m.group(1)))
    return sorted(steps)


def save(
    engine: Any, root: Path, step: int, client: dict[str, Any], info: dict[str, Any], env: DistEnv, keep: int
) -> None:
    """Save a checkpoint of every rank at ``step`` and mark it complete; keep the ``keep`` newest.

    ``client`` is this rank's own state (stream position, RNG); ``info`` (same on every rank) goes into the
    marker. All ranks must call this together.
    """
    tag = tag_for(step)
    (root / tag).mkdir(parents=True, exist_ok=True)
    (root / tag / COMPLETE).unlink(missing_ok=True)  # re-saving a step (after a resume) starts incomplete
    write_atomic(_client_file(root, tag, env.rank), json.dumps(client))
    # DeepSpeed's save ends with a barrier, so every rank's files (ours included) exist once it returns.
    try:
        engine.save_checkpoint(str(root), tag=tag, client_state={"step": step}, save_latest=False)
    except OSError as e:
        raise storage_error(e, root / tag) from e
    except RuntimeError as e:
        # torch reports a full disk as "enforce fail at inline_container.cc"; say what actually happened.
        if shutil.disk_usage(root).free < _LOW_SPACE:
            raise StorageError(
                errno.ENOSPC,
                f"no space left on device: {root / tag} (saving the checkpoint "
                f"of step {step}; {shutil.disk_usage(root).free / 2**20:.1f} MiB free)",
            ) from e
        raise
    if env.is_main:
        manifest.sign(root / tag, exclude=(COMPLETE,))
        write_atomic(root / tag / COMPLETE, json.dumps({"step": step, "world_size": env.world_size, **info}))
        write_atomic(root / "latest", tag)
        for old in complete_steps(root)[:-keep]:
            shutil.rmtree(root / tag_for(old), ignore_errors=True)
    barrier(env)


def adopt(parent: Path, root: Path, step: int, env: DistEnv) -> None:
    """Make a run that starts from another run's checkpoint (a WSD trunk segment or branch) own it: the
    parent's complete tag at ``step``, manifest included, hard-linked (copied across file systems) into
    ``root``, where ``load_latest`` verifies it like any checkpoint of the run's own before loading it.

    Only while the run has no complete checkpoint of its own (a resumed branch resumes from its latest).
    The parent's manifest is verified first, so an altered parent is never linked in. All ranks call this.
    """
    src, tag = parent / tag_for(step), tag_for(step)
    if complete_steps(root):
        barrier(env)
        return
    if not (src / COMPLETE).is_file():
        raise FileNotFoundError(
            f"{src} is not a complete checkpoint: the run this one starts from has not "
            f"finished step {step} (launch it first; on SLURM this run depends on it)"
        )
    if env.is_main:
        manifest.verify(src, exclude=(COMPLETE,))
        tmp = root / f".adopt-{tag}"  # linked in full, then renamed: a killed adoption leaves no tag behind
        shutil.rmtree(tmp, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, tmp, copy_function=_link_or_copy)
        shutil.rmtree(root / tag, ignore_errors=True)  # an incomplete tag of a killed first save
        tmp.rename(root / tag)
        write_atomic(root / "latest", tag)
    barrier(env)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # the parent never writes a finished tag again, so sharing its inodes is safe
    except OSError:
        shutil.copy2(src, dst)


def load_latest(engine: Any, root: Path, env: DistEnv) -> tuple[int, dict[str, Any] | None]:
    """Load the newest complete checkpoint into ``engine``; returns (its step, this rank's client state).

    Returns (0, None) when there is none. Incomplete tag directories (a save that was killed) are removed
    first by rank 0, so they can never be mistaken for complete ones later.
    """
    steps = complete_steps(root)
    if env.is_main and root.is_dir():
        for d in root.iterdir():
            if _TAG.match(d.name) and not (d / COMPLETE).is_file():
                shutil.rmtree(d, ignore_errors=True)
    barrier(env)
    if not steps:
        return 0, None
    tag = tag_for(steps[-1])
    # Before DeepSpeed unpickles anything: every file of the tag must be one this user signed at save time.
    manifest.verify(root / tag, exclude=(COMPLETE,))
    path, _ = engine.load_checkpoint(
        str(root), tag=tag, load_optimizer_states=True, load_lr_scheduler_states=True
    )
    if path is None:
        raise RuntimeError(f"DeepSpeed could not load the complete checkpoint {root / tag}")
    client_file = _client_file(root, tag, env.rank)
    if not client_file.is_file():
        marker = json.loads((root / tag / COMPLETE).read_text())
        raise RuntimeError(
            f"checkpoint {tag} was saved by {marker.get('world_size')} ranks and has no state "
            f"for rank {env.rank}; resume with the same world size"
        )
    return steps[-1], json.loads(client_file.read_text())
