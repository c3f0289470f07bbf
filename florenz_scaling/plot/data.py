"""Tables and fit results as the figures need them: final points per group, sizes in order, fits by key,
the paper's coefficients, and the sweep directory's files read into those shapes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from florenz_scaling.files import SweepDir
from florenz_scaling.results import group_losses, read_records, read_table

PAPER_FILE = "paper_coefficients.json"
_BOOL_COLUMNS = ("final", "partial")
_STR_COLUMNS = ("run_id", "size", "family", "task", "lang", "group")


def coerce_table(table: pd.DataFrame) -> pd.DataFrame:
    """The results table with booleans as bools and ids as strings, whatever file it was read from."""
    t = table.copy()
    for c in _BOOL_COLUMNS:
        if c in t.columns and t[c].dtype != bool:
            t[c] = t[c].map(lambda v: str(v).strip().lower() in ("true", "1", "yes")).astype(bool)
    for c in _STR_COLUMNS:
        if c in t.columns:
            t[c] = t[c].fillna("").astype(str)
    if "partial" not in t.columns:
        t["partial"] = False
    return t


def final_points(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, group) at the run's last step: the sample-weighted group loss, as in Fig. 3."""
    t = coerce_table(table)
    return group_losses(t[t["final"]]).reset_index(drop=True)


def size_order(table: pd.DataFrame) -> list[str]:
    """Size names from small to large (by total parameters)."""
    s = table.groupby("size")["params"].max().sort_values(kind="stable")
    return [str(x) for x in s.index]


def pair_order(table: pd.DataFrame, groups: Sequence[str]) -> list[tuple[str, str, str]]:
    """(group, task, lang) of every evaluated pair, groups in figure order."""
    pairs = table[["group", "task", "lang"]].drop_duplicates()
    rank = {g: i for i, g in enumerate(groups)}
    rows = sorted(pairs.itertuples(index=False), key=lambda r: (rank.get(r.group, len(rank)), r.task, r.lang))
    return [(r.group, r.task, r.lang) for r in rows]


def find_fit(fits: Iterable[Any], law: str, group: str, task: str | None = None,
             lang: str | None = None) -> Any | None:
    """The fit of ``law`` for a group (or a pair, given task and lang), or None."""
    for f in fits:
        if f.law == law and f.group == group and (f.task or None) == task and (f.lang or None) == lang:
            return f
    return None


def paper_coefficients(paper: dict[str, Any] | None, law: str, group: str) -> dict[str, tuple] | None:
    """The paper's coefficients of ``law`` for ``group`` as {name: (value, lo, hi, p-value note)}, or None.

    ``paper`` is fits/paper_coefficients.json: ``{"laws": {law: {"groups": {group: {"params": {...},
    "ci": {name: [lo, hi]}, "pvalues": {name: "p<0.001"}}}}}}`` (the keys a FitResult uses).
    """
    if not paper:
        return None
    entry = (((paper.get("laws") or {}).get(law) or {}).get("groups") or {}).get(group)
    if not isinstance(entry, dict) or not entry.get("params"):
        return None
    ci, pv = entry.get("ci") or {}, entry.get("pvalues") or {}
    return {name: (float(v), *(float(x) for x in ci.get(name, (np.nan, np.nan))), str(pv.get(name, "")))
            for name, v in entry["params"].items()}


def paper_predict(coef: dict[str, tuple], law: str, **inputs: Any) -> np.ndarray:
    """The paper's law (Eq. 1 or Eq. 3, log10 space) evaluated at the inputs, as a loss."""
    if law == "compute":
        return 10.0 ** (coef["alpha0"][0] + coef["alpha1"][0] * np.log10(inputs["C"]))
    if law == "size-data":
        b0, b1, b2 = (coef[k][0] for k in ("beta0", "beta1", "beta2"))
        return 10.0 ** (b0 + b1 * np.log10(inputs["P"]) + b2 * np.log10(inputs["S"]))
    raise ValueError(f"the paper has no coefficients for law {law!r}")


def paper_candidates(sweep_dir: str | Path | None = None) -> list[Path]:
    """Where the paper's Tables 2–3 may be: the sweep's fits/, the repository's fits/, the package."""
    pkg = Path(__file__).resolve().parent
    found = [SweepDir(sweep_dir).fits / PAPER_FILE] if sweep_dir is not None else []
    return [*found, pkg.parent / "fits" / PAPER_FILE, pkg / PAPER_FILE, pkg / "fit" / PAPER_FILE]


def load_paper(sweep_dir: str | Path | None = None, path: str | Path | None = None) -> dict[str, Any] | None:
    """The paper's coefficients (JSON), or None when no copy is found: figures then skip the paper's line."""
    for p in [Path(path)] if path is not None else paper_candidates(sweep_dir):
        if p.is_file():
            return json.loads(p.read_text(encoding="utf-8"))
    return None


def load_table(sweep_dir: str | Path) -> pd.DataFrame:
    """The collected results table (results.csv) of a sweep."""
    sd = SweepDir(sweep_dir)
    return coerce_table(read_table(sd.results_csv))


def load_fits(sweep_dir: str | Path) -> list[Any]:
    """Every fit result in DIR/fits/*.json (the paper's coefficients file excluded)."""
    from florenz_scaling.fit import FitResult

    out = []
    for p in sorted(SweepDir(sweep_dir).fits.glob("*.json")):
        if p.name == PAPER_FILE:
            continue
        out.append(FitResult.from_json(p.read_text(encoding="utf-8")))
    return out


def load_train_losses(sweep_dir: str | Path, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Training-loss records (columns run_id, step, seen_samples, loss) from every runs/*/losses.jsonl."""
    sd = SweepDir(sweep_dir)
    ids = list(run_ids) if run_ids is not None else sorted(p.name for p in sd.runs.glob("*") if p.is_dir())
    rows = []
    for rid in ids:
        path = sd.run(rid).losses
        if not path.is_file():
            continue
        for r in read_records(path).records:
            if r.kind == "train":
                rows.append((r.run_id, r.step, r.seen_samples, r.loss))
    return pd.DataFrame(rows, columns=["run_id", "step", "seen_samples", "loss"])
