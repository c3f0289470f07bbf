"""``launch --dry-run`` prints what ``launch`` submits: recorded outputs, and the parameters a real launch
hands to submitit compared with the ones the dry run printed.

Recorded files live in ``tests/data/dryrun/`` (and the paper sweep's in ``tests/data/dry_run_paper.txt``).
After an intended change to the dry run, regenerate them and review the diff:

    FLORENZ_RECORD=1 .venv/bin/python -m pytest tests/test_dryrun.py
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tiny_sweeps import TINY_DEMO, wait_runs

import florenz_scaling.launch.submit as submit_module
from florenz_scaling.cli import main as cli_main
from florenz_scaling.launch.dryrun import format_dry_run
from florenz_scaling.launch.ledger import Ledger
from florenz_scaling.launch.scheduler import slurm_available
from florenz_scaling.launch.status import sweep_status
from florenz_scaling.launch.submit import launch, submissions
from florenz_scaling.plan import make_plan, write_plan
from florenz_scaling.spec import load_sweep

REPO = Path(__file__).resolve().parents[1]
RECORDED = REPO / "tests" / "data" / "dryrun"
TRIVIAL = "florenz_doubles:sleep_run"
RECORD = os.environ.get("FLORENZ_RECORD") == "1"


def normalise(text: str) -> str:
    """Stand-ins for what differs between machines and launches (the text should hold none of it anyway)."""
    text = text.replace(str(REPO), "<repo>")
    return re.sub(r"jobs/\d{8}-\d{6}-\d{6}/", "jobs/<launch>/", text)


def check_recorded(text: str, path: Path, regenerate: str) -> None:
    """Compare with the recorded file, or (``FLORENZ_RECORD=1``) rewrite it."""
    text = normalise(text)
    if RECORD:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no recorded output {path}; {regenerate}"
    assert text == path.read_text(), f"dry run differs from {path}; if intended, {regenerate}"


def _cli_dry_run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli_main(["launch", *args, "--dry-run"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("executor", ["slurm", "local"])
def test_demo_dry_run_matches_recorded_output(executor: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Neither the sweep's path nor --out may show in the text ($OUT stands for the sweep directory).
    sweep = REPO / "sweeps" / "demo.yaml"
    out = _cli_dry_run(capsys, str(sweep), "--out", "/tmp/anywhere", "--executor", executor)
    assert "/tmp/anywhere" not in out and str(REPO) not in out
    check_recorded(out, RECORDED / f"demo-{executor}.txt", "regenerate with FLORENZ_RECORD=1 (module doc)")
    assert "MISMATCH" not in out


def test_paper_dry_run_matches_recorded_output(capsys: pytest.CaptureFixture[str]) -> None:
    # No srun needed: the sbatch script is rendered without a cluster (a dry run is for before one).
    out = _cli_dry_run(capsys, str(REPO / "sweeps" / "florenz_paper.yaml"))
    check_recorded(out, REPO / "tests" / "data" / "dry_run_paper.txt", "regenerate with FLORENZ_RECORD=1")
    assert "ok" in out and "MISMATCH" not in out


def test_slurm_dry_run_needs_no_srun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun, sinfo or sbatch anywhere
    assert shutil.which("srun") is None
    out = _cli_dry_run(capsys, str(TINY_DEMO), "--executor", "slurm")
    assert "#SBATCH --array=0-8%2" in out


def _printed(text: str) -> list[tuple[dict[str, Any], list[str]]]:
    """(executor parameters, run ids) of every submission the dry-run text shows, in order."""
    subs: list[tuple[dict[str, Any], list[str]]] = []
    for line in text.splitlines():
        if line.startswith("executor parameters: "):
            subs.append((json.loads(line.removeprefix("executor parameters: ")), []))
        elif re.match(r"  \[\d+\] ", line) and subs:
            subs[-1][1].append(line.split()[1])
    return subs


def test_dry_run_shows_what_launch_submits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Launch the demo plan locally with the trivial job and record every ``update_parameters`` call."""
    spec = load_sweep(TINY_DEMO)
    plan = make_plan(spec)
    printed = _printed(format_dry_run(spec, plan, "local", entry=TRIVIAL))
    assert [p["timeout_min"] for p, _ in printed] == [120, 150]  # 4 and 5 runs of 30 min, one after another

    calls: list[tuple[str, Path, dict[str, Any]]] = []
    real = submit_module._make_executor

    def recording(kind: str, folder: Path, params: dict[str, Any]) -> Any:
        calls.append((kind, folder, json.loads(json.dumps(params))))  # a copy, as JSON would print it
        return real(kind, folder, params)

    monkeypatch.setattr(submit_module, "_make_executor", recording)
    monkeypatch.setenv("FLORENZ_SLEEP_S", "0")
    write_plan(spec, plan, tmp_path)
    res = launch(spec, tmp_path, plan, executor="local", entry=TRIVIAL)
    assert {r.state for r in wait_runs(tmp_path, res.jobs, timeout=120)} == {"done"}, (
        "trivial runs unfinished"
    )

    assert [params for _, _, params in calls] == [params for params, _ in printed]
    assert {kind for kind, _, _ in calls} == {"local"} and {f for _, f, _ in calls} == {res.folder / "%j"}
    # Each submitted job got the runs the dry run listed under it, in that order.
    by_job: dict[str, list[str]] = {}
    for run_id, job_id in res.submitted:
        by_job.setdefault(job_id, []).append(run_id)
    assert list(by_job.values()) == [ids for _, ids in printed]
    events = [e for e in Ledger(tmp_path / "ledger.jsonl").read() if e.event == "submitted"]
    assert [(e.run_id, e.job_id) for e in events] == res.submitted
    # And submissions() is that same list, job folder aside.
    subs = submissions(spec, plan, tmp_path, "local", TRIVIAL)
    assert [s.parameters for s in subs] == [params for _, _, params in calls]
    assert [s.timeout_min for s in subs] == [120, 150]


@pytest.mark.slurm
@pytest.mark.parametrize("sizes", ["[T-0.2M, T-0.5M, T-1.3M]", "[T-0.2M]"])
def test_dry_run_sbatch_script_is_the_one_submitted(
    sizes: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On the local SLURM cluster: the script sbatch got is the one the dry run printed (an array of 9, and
    a lone run, which submitit submits without --array)."""
    if not slurm_available():
        pytest.skip("no SLURM controller answers (start one with scripts/slurm-local start)")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("FLORENZ_SLEEP_S", "0")
    over = [f"sizes={sizes}"] + (["grid.steps=[30]"] if sizes == "[T-0.2M]" else [])
    spec = load_sweep(TINY_DEMO, over)
    plan = make_plan(spec)
    text = format_dry_run(spec, plan, "slurm", entry=TRIVIAL)
    lines = text.splitlines()
    printed = lines[
        lines.index("sbatch script:") + 1 : lines.index(next(ln for ln in lines if ln.startswith("runs (")))
    ]
    write_plan(spec, plan, tmp_path)
    res = launch(spec, tmp_path, plan, executor="slurm", entry=TRIVIAL)
    scripts = sorted(
        res.folder.glob("*/*_submission.sh")
    )  # one per sbatch call: <job id>/<job id>_submission.sh
    assert len(scripts) == 1, scripts
    submitted = scripts[0].read_text()
    submitted = submitted.replace(str(res.folder), "$OUT/jobs/<launch>").replace(
        shlex.quote(sys.executable), "python"
    )
    # The dry run's placeholder "$OUT" is shell-quoted where a real path needs no quotes: quotes aside.
    assert ["  " + ln for ln in submitted.replace("'", "").splitlines()] == [
        ln.replace("'", "") for ln in printed
    ]
    deadline = time.time() + 120
    while any(r.state in ("queued", "running") for r in sweep_status(tmp_path)) and time.time() < deadline:
        time.sleep(0.5)
    assert all(r.state == "done" for r in sweep_status(tmp_path))
