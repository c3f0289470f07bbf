"""A received run directory never runs code: checkpoints load only when they match this user's signed
manifest, and our own state is JSON, not pickle."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("torch")

from train_runs import CLI, child_env, make_run, train  # noqa: E402

from florenz_scaling.train import manifest  # noqa: E402


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory):
    rd = make_run(tmp_path_factory.mktemp("trust"), steps=3, checkpoint_every=3)
    train(rd)
    return rd


def _resume(rd, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    rd.done.unlink(missing_ok=True)
    return subprocess.run(
        [CLI, "train", str(rd.root)],
        env=child_env(**(env_extra or {})),
        capture_output=True,
        text=True,
        timeout=240,
    )


def _copy(rd, dest: Path):
    import shutil

    shutil.copytree(rd.root, dest)
    return type(rd)(dest)


def test_client_state_is_json_and_the_tag_is_signed(finished) -> None:
    tag = finished.checkpoints / "step00000003"
    client = json.loads((tag / "client_rank0.json").read_text())
    assert set(client) >= {"stream", "rng", "wall_time_s"}
    assert not list(tag.glob("client_rank*.pt"))
    doc = json.loads((tag / manifest.MANIFEST).read_text())
    assert "client_rank0.json" in doc["files"] and "mp_rank_00_model_states.pt" in doc["files"]
    manifest.verify(tag, exclude=("COMPLETE",))


def test_a_crafted_pickle_in_a_checkpoint_does_not_execute(finished, tmp_path: Path) -> None:
    rd = _copy(finished, tmp_path / "received")
    marker = tmp_path / "PWNED"
    tag = rd.checkpoints / "step00000003"
    evil = tag / "mp_rank_00_model_states.pt"
    evil.write_bytes(pickle.dumps(_Payload(marker)))
    # The sender also rewrites the manifest with the right hashes, but cannot make its HMAC without our key.
    doc = json.loads((tag / manifest.MANIFEST).read_text())
    doc["files"][evil.name] = [evil.stat().st_size, hashlib.sha256(evil.read_bytes()).hexdigest()]
    (tag / manifest.MANIFEST).write_text(json.dumps(doc))
    proc = _resume(rd)
    assert proc.returncode != 0
    assert "refusing to load" in proc.stderr + proc.stdout
    assert not marker.exists()


def test_an_added_or_altered_file_is_refused(finished, tmp_path: Path) -> None:
    rd = _copy(finished, tmp_path / "altered")
    tag = rd.checkpoints / "step00000003"
    (tag / "extra.pt").write_bytes(b"x")
    with pytest.raises(manifest.UntrustedCheckpoint, match="not listed"):
        manifest.verify(tag, exclude=("COMPLETE",))
    (tag / "extra.pt").unlink()
    client = tag / "client_rank0.json"
    client.write_text(client.read_text().replace('"position"', '"position" ', 1))
    with pytest.raises(manifest.UntrustedCheckpoint, match="contents differ"):
        manifest.verify(tag, exclude=("COMPLETE",))


def test_another_users_checkpoint_is_refused(finished, tmp_path: Path) -> None:
    rd = _copy(finished, tmp_path / "theirs")
    proc = _resume(rd, {"FLORENZ_CHECKPOINT_KEY": str(tmp_path / "other-user.key")})
    assert proc.returncode != 0 and "no checkpoint key" in proc.stderr + proc.stdout


def test_a_signed_checkpoint_still_resumes(finished, tmp_path: Path) -> None:
    rd = _copy(finished, tmp_path / "mine")
    proc = _resume(rd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert rd.done.exists()


def test_a_second_trainer_on_a_live_run_refuses_to_start(tmp_path: Path) -> None:
    from florenz_scaling.files import exclusive_lock

    rd = make_run(tmp_path, steps=3)
    with exclusive_lock(rd.trainer_lock):  # what a live trainer holds
        proc = subprocess.run(
            [CLI, "train", str(rd.root)], env=child_env(), capture_output=True, text=True, timeout=240
        )
    assert proc.returncode != 0
    assert "in use by another live process" in proc.stderr + proc.stdout
    assert not rd.losses.exists() and not rd.done.exists()
    train(rd)  # released when its holder is gone
    assert rd.done.exists()
