"""A full disk or a read-only directory fails with the path and the cause, and leaves no temp files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from tiny_sweeps import TINY_DEMO

from florenz_scaling.files import StorageError, atomic_path, write_atomic


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 256 KiB tmpfs (root can mount one; elsewhere the test is skipped)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_write_into_a_full_disk_names_path_and_cause_and_leaves_nothing(tiny_disk: Path) -> None:
    target = tiny_disk / "results.csv"
    with pytest.raises(StorageError, match=f"no space left on device: {target}"):
        write_atomic(target, "x" * (1 << 20))
    assert list(tiny_disk.iterdir()) == []


def test_a_failed_write_keeps_the_old_file(tiny_disk: Path) -> None:
    target = tiny_disk / "report.html"
    write_atomic(target, "old")
    with pytest.raises(StorageError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"y" * (1 << 20))
    assert target.read_text() == "old"
    assert [p.name for p in tiny_disk.iterdir()] == ["report.html"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories anyway")
def test_a_read_only_directory_names_the_path(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(StorageError, match=f"permission denied: {ro / 'plan.csv'}"):
        write_atomic(ro / "plan.csv", "x")


def test_a_read_only_file_system_names_the_path(tiny_disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    with pytest.raises(StorageError, match=f"read-only file system: {tiny_disk / 'fits.json'}"):
        write_atomic(tiny_disk / "fits.json", "{}")


def test_collect_on_a_full_disk_exits_with_the_cause(tiny_disk: Path, repo: Path, capsys) -> None:
    from florenz_scaling.cli import main
    from florenz_scaling.plan import make_plan, write_plan
    from florenz_scaling.spec import load_sweep

    spec = load_sweep(TINY_DEMO)
    write_plan(spec, make_plan(spec), tiny_disk)
    filler = tiny_disk / "filler"
    with pytest.raises(OSError):
        with open(filler, "wb") as fh:  # fill the disk to the last byte
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
    before = sorted(p.name for p in tiny_disk.iterdir())
    assert main(["collect", str(tiny_disk)]) == 1
    assert f"error: no space left on device: {tiny_disk / 'results.csv'}" in capsys.readouterr().err
    assert sorted(p.name for p in tiny_disk.iterdir()) == before  # no temp file left behind


@pytest.mark.slow
@pytest.mark.parametrize("size_kb", [700, 3000])  # full while preparing data / while saving a checkpoint
def test_the_trainer_on_a_full_disk_names_the_cause(tmp_path: Path, size_kb: int) -> None:
    pytest.importorskip("torch")
    from train_runs import CLI, child_env, make_run

    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mnt)], capture_output=True
    )
    if proc.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        rd = make_run(mnt, steps=6, checkpoint_every=3)
        proc = subprocess.run(
            [CLI, "train", str(rd.root)], env=child_env(), capture_output=True, text=True, timeout=240
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, out[-2000:]
        assert "no space left on device: " + str(mnt) in out, out[-3000:]
        assert not [p for p in mnt.rglob("*.tmp")]
        assert not rd.done.exists()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
