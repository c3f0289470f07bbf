"""The three approaches on one table or one sweep: ``analyse_isoflop``, and the files of a budget sweep.

A sweep's analysis is written per group to DIR/fits/isoflop/<group>.json (a folder of its own, so that the
single-fit readers of DIR/fits/*.json never see it) and read back by ``load_isoflop`` for plots and report.
Which budget a run was planned for is the plan's (``budget_gmacs``); the caller passes it as ``budget_of``
(fit does not read plans), else runs are pooled by their C (``fit.isoflop.assign_budgets``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from florenz_scaling.fit.isoflop import IsoFLOP, assign_budgets, isoflop_profiles
from florenz_scaling.fit.isoflop_envelope import envelope
from florenz_scaling.fit.isoflop_law import DEFAULT_LAW, law_exponents
from florenz_scaling.fit.laws import LawError

ISOFLOP_DIR = "isoflop"


def analyse_isoflop(
    finals: Any,
    curves: Any = None,
    *,
    budgets: Sequence[float] | None = None,
    law: str | None = DEFAULT_LAW,
    n_boot: int = 1000,
    seed: int = 0,
    group: str | None = None,
) -> IsoFLOP:
    """Approaches 2, 1 and 3 on one table of final losses (N, D, C, loss, run_id; one row per run).

    ``curves`` (every evaluation point; default: the finals) feeds approach 1; ``law`` names the registry
    law whose allocation is approach 3 (None: skipped). A missing approach is a warning, not an error.
    """
    finals = finals.reset_index(drop=True)
    if "run_id" not in finals.columns:
        finals = finals.assign(run_id=[f"row{i}" for i in range(len(finals))])
    profiles, a2, warnings = isoflop_profiles(finals, budgets=budgets, n_boot=n_boot, seed=seed)
    exponents = {"approach2": a2} if a2 is not None else {}
    env_points, a1, w1 = envelope(curves if curves is not None else finals, n_boot=n_boot, seed=seed)
    warnings += w1
    if a1 is not None:
        exponents["approach1"] = a1
    if law is not None:
        C = [p.C for p in profiles]
        try:
            exponents["approach3"] = law_exponents(finals, law, budgets=C, n_boot=n_boot, seed=seed)
        except (ValueError, LawError, np.linalg.LinAlgError) as e:
            warnings.append(f"approach 3 ({law}): {e}")
    model = finals.attrs.get("flop_convention", "C as given")
    return IsoFLOP(profiles, exponents, env_points, warnings, model, group)


def sweep_isoflop_inputs(
    table: Any, budget_of: Mapping[str, float] | None = None
) -> dict[str, tuple[Any, Any]]:
    """Per group of a collected results table: (finals, curves) with N, D, C, loss, run_id (+ budget).

    Finals are each run's last full evaluation (``fit.io.sweep_points``). Curves are every fully evaluated
    step of the group's losses; for WSD sweeps only the branch ends (a trunk is not decayed, pitfall 7).
    """
    import pandas as pd

    from florenz_scaling.fit.io import _truthy, sweep_points
    from florenz_scaling.results import group_losses

    finals = sweep_points(table, level="group")
    t = pd.DataFrame(table)
    for col in ("diverged", "partial"):
        if col in t.columns:
            t = t[~_truthy(t[col])]
    if "schedule" in t.columns and (t["schedule"].astype(str) == "wsd").any():
        t = t[_truthy(t["final"])]
    g = group_losses(t)
    curves = pd.DataFrame(
        {
            "run_id": g["run_id"].astype(str).to_numpy(),
            "group": g["group"].astype(str).to_numpy(),
            "N": g["params"].astype(float).to_numpy(),
            "D": g["seen_samples"].astype(float).to_numpy(),
            "C": g["compute_gmacs"].astype(float).to_numpy(),
            "loss": g["loss"].astype(float).to_numpy(),
        }
    )
    curves = curves[curves["D"] > 0]
    if budget_of:
        finals = finals[finals["run_id"].isin(budget_of)]
        finals = finals.assign(budget=[float(budget_of[r]) for r in finals["run_id"]])
    out = {}
    for grp in sorted(set(finals["group"])):
        f = finals[finals["group"] == grp].reset_index(drop=True)
        f.attrs["flop_convention"] = finals.attrs.get("flop_convention", "")
        out[grp] = (f, curves[(curves["group"] == grp) & curves["run_id"].isin(f["run_id"])])
    return out


def write_isoflop(
    sweep_dir: str | Path,
    budget_of: Mapping[str, float] | None = None,
    *,
    law: str | None = DEFAULT_LAW,
    n_boot: int = 1000,
    seed: int = 0,
) -> list[Path]:
    """Analyse every group of a collected budget sweep and write DIR/fits/isoflop/<group>.json."""
    from florenz_scaling.files import SweepDir, write_atomic
    from florenz_scaling.results import read_table

    sd = SweepDir(sweep_dir)
    out_dir = sd.fits / ISOFLOP_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for grp, (finals, curves) in sweep_isoflop_inputs(read_table(sd.results_csv), budget_of).items():
        res = analyse_isoflop(finals, curves, law=law, n_boot=n_boot, seed=seed, group=grp)
        path = out_dir / f"{grp or 'all'}.json"
        write_atomic(path, res.to_json() + "\n")
        written.append(path)
    return written


def load_isoflop(sweep_dir: str | Path) -> list[IsoFLOP]:
    """Every group's analysis in DIR/fits/isoflop/, in file-name order (none: an empty list)."""
    from florenz_scaling.files import SweepDir

    d = SweepDir(sweep_dir).fits / ISOFLOP_DIR
    return [IsoFLOP.from_json(p.read_text(encoding="utf-8")) for p in sorted(d.glob("*.json"))]


def budget_lines(res: IsoFLOP) -> list[str]:
    """The per-budget table and the exponents, as ``fit --isoflop`` prints them."""
    head = f"{'C':>11} {'runs':>4} {'sizes':>5} {'N_opt':>11} {'95% interval':>25} {'D_opt':>11}"
    lines = [f"{head} {'L_min':>8}  note"]
    for p in res.budgets:
        iv = f"[{p.lower:.4g}, {p.upper:.4g}]" if p.lower is not None and p.upper is not None else "n/a"
        n = f"{p.N_opt:.4g}" if p.N_opt is not None else "n/a"
        d = f"{p.D_opt:.4g}" if p.D_opt is not None else "n/a"
        lm = f"{p.loss_min:.4f}" if p.loss_min is not None else "n/a"
        lines.append(
            f"{p.C:11.4g} {p.n_runs:4d} {len(p.sizes):5d} {n:>11} {iv:>25} {d:>11} {lm:>8}  {p.note}"
        )
    for key, e in sorted(res.exponents.items()):
        ci = f"[{e.lower:.3f}, {e.upper:.3f}]" if e.lower is not None else "[n/a]"
        bci = f"[{e.b_lower:.3f}, {e.b_upper:.3f}]" if e.b_lower is not None else "[n/a]"
        lines.append(f"{key}: N_opt ∝ C^{e.a:.3f} {ci}, D_opt ∝ C^{e.b:.3f} {bci}  ({e.note})")
    lines.append(res.headline())
    lines += [f"warning: {w}" for w in res.warnings]
    return lines


__all__ = [
    "ISOFLOP_DIR",
    "analyse_isoflop",
    "assign_budgets",
    "budget_lines",
    "load_isoflop",
    "write_isoflop",
]
