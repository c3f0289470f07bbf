"""Signed manifests of checkpoint directories: resume only from files this user wrote.

DeepSpeed loads its checkpoint files with ``torch.load(weights_only=False)``, i.e. by unpickling, so a crafted
file in a received run directory would run code on resume. A manifest lists every file of a checkpoint tag
with its size and SHA-256, and carries an HMAC-SHA256 of that list under a per-user key that is kept outside
every run directory. A manifest forged in the run directory cannot carry a valid HMAC without the key.

The key lives in ``$FLORENZ_CHECKPOINT_KEY`` (a file path) or ``~/.config/florenz-scaling/checkpoint.key``
(created on first use, mode 0600). On a cluster, the home directory shared by the nodes gives every rank
the same key; a different user, or a copy of the sweep on another machine, cannot resume its checkpoints
(it can still read the results and the run's losses, which are plain JSON).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Iterable
from pathlib import Path

from florenz_scaling.files import write_atomic

MANIFEST = "MANIFEST.json"
_CHUNK = 1 << 20


class UntrustedCheckpoint(RuntimeError):
    """A checkpoint's files do not match a manifest signed with this user's key; it is not loaded."""


def key_path() -> Path:
    """Where this user's signing key is kept (never inside a run directory)."""
    env = os.environ.get("FLORENZ_CHECKPOINT_KEY")
    return Path(env) if env else Path.home() / ".config" / "florenz-scaling" / "checkpoint.key"


def _key(create: bool) -> bytes:
    path = key_path()
    if not path.is_file():
        if not create:
            raise UntrustedCheckpoint(
                f"no checkpoint key at {path}: this checkpoint was not written by this user here"
            )
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written whole under a private name, then linked into place: another rank or process that loses
        # the race reads the winner's complete key, never an empty file created a moment before its write.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
            os.link(tmp, path)
        except FileExistsError:
            pass  # another rank made it first
        finally:
            os.unlink(tmp)
    return path.read_text().strip().encode()


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _files(directory: Path, exclude: Iterable[str]) -> list[Path]:
    skip = {MANIFEST, *exclude}
    return sorted(
        p for p in directory.rglob("*") if p.is_file() and p.name not in skip and not p.name.startswith(".")
    )


def _mac(key: bytes, entries: dict[str, list]) -> str:
    return hmac.new(key, json.dumps(entries, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def sign(directory: Path, exclude: Iterable[str] = ()) -> None:
    """Write ``directory/MANIFEST.json``: each file below it (but ``exclude``), its size, hash; our HMAC."""
    files = _files(directory, exclude)
    entries = {str(p.relative_to(directory)): [p.stat().st_size, _digest(p)] for p in files}
    doc = {"files": entries, "hmac": _mac(_key(create=True), entries)}
    write_atomic(directory / MANIFEST, json.dumps(doc, indent=1, sort_keys=True) + "\n")


def verify(directory: Path, exclude: Iterable[str] = ()) -> None:
    """Raise ``UntrustedCheckpoint`` unless every file below ``directory`` is exactly one our manifest lists.

    Nothing in the directory is opened except by hashing its bytes, so a crafted file cannot act here.
    """
    where = directory / MANIFEST
    try:
        doc = json.loads(where.read_text())
        entries, mac = doc["files"], doc["hmac"]
        if not isinstance(entries, dict) or not isinstance(mac, str):
            raise TypeError("malformed")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UntrustedCheckpoint(f"{where}: no valid manifest ({e}); refusing to load {directory}") from None
    if not hmac.compare_digest(_mac(_key(create=False), entries), mac):
        raise UntrustedCheckpoint(
            f"{where} is not signed with this user's key ({key_path()}): the checkpoint was written by "
            "someone else or altered; refusing to load it (delete the checkpoints to train from scratch)"
        )
    present = {str(p.relative_to(directory)): p for p in _files(directory, exclude)}
    extra = sorted(set(present) - set(entries))
    missing = sorted(set(entries) - set(present))
    if extra or missing:
        raise UntrustedCheckpoint(
            f"{directory}: files differ from its signed manifest (not listed: {extra}; missing: {missing})"
        )
    for name, (size, digest) in entries.items():
        p = present[name]
        if p.stat().st_size != size or _digest(p) != digest:
            raise UntrustedCheckpoint(f"{p}: contents differ from its signed manifest; refusing to load it")
