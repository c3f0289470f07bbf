"""Run directories made under an earlier id rule, recognised by what their ``run.yaml`` says.

Run ids changed once by construction (``spec.identity``: a hash of the non-default, training-determining
values replaced a hash of whole sections with per-field carve-outs). A sweep directory made before holds
``runs/<old id>/``; its ``run.yaml`` is the resolved spec of that run, so today's id of each one can be
computed from it. ``link_old_runs`` gives every planned run whose directory exists only under its old name a
link ``runs/<new id> -> <old id>``: launch then finds it done (or resumes it in place, checkpoints and
records included), status and collect read it, and nothing that is done is trained again. Nothing is moved
or rewritten, so a job still holding the old path keeps working.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from florenz_scaling.spec.load import SpecError
from florenz_scaling.spec.sweep import RunSpec, load_run


def current_ids(runs_dir: Path, skip: Iterable[str] = ()) -> dict[str, str]:
    """Directory name -> today's id of the run its ``run.yaml`` describes, for every real directory under
    ``runs_dir`` except those in ``skip``. A WSD run names the run it starts from by that run's directory
    name, so parents are resolved first and the child's ``start_from`` is translated before hashing."""
    skipped = set(skip)
    pending: dict[str, RunSpec] = {}
    for y in sorted(runs_dir.glob("*/run.yaml")):
        if y.parent.name in skipped or y.parent.is_symlink():
            continue
        try:
            pending[y.parent.name] = load_run(y)
        except (SpecError, OSError, ValueError):
            continue  # not a run this version can read: it is left alone, never guessed at
    ids: dict[str, str] = {}
    while pending:
        ready = [n for n, r in pending.items() if r.start_from is None or r.start_from not in pending]
        if not ready:
            break  # a cycle of start_from: no run of it can be identified
        for name in ready:
            run = pending.pop(name)
            if run.start_from is not None:
                run = dataclasses.replace(run, start_from=ids.get(run.start_from, run.start_from))
            ids[name] = run.run_id
    return ids


def link_old_runs(runs_dir: str | Path, planned: Iterable[RunSpec]) -> dict[str, str]:
    """For every planned run without ``runs/<run_id>`` whose run an old directory holds, link the new name to
    it; returns new id -> old directory name of the links made."""
    runs_dir = Path(runs_dir)
    wanted = {r.run_id for r in planned}
    missing = {i for i in wanted if not (runs_dir / i).exists()}
    if not missing or not runs_dir.is_dir():
        return {}
    links: dict[str, str] = {}
    for old, new in current_ids(runs_dir, skip=wanted).items():
        if new in missing and new not in links and old != new:
            try:
                (runs_dir / new).symlink_to(old, target_is_directory=True)
            except FileExistsError:  # a concurrent launch linked it first
                if (runs_dir / new).resolve() != (runs_dir / old).resolve():
                    raise
            links[new] = old
    return links
