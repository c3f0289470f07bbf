"""Tables and fit results as the figures need them: final points per group, sizes in order, fits by key,
and the sweep directory's results and training losses read into those shapes. Fits and the paper's
coefficients are read by ``florenz_scaling.fit`` (``load_fits``, ``load_paper``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from florenz_scaling.files import SweepDir
from florenz_scaling.results import group_losses, read_records, read_table

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


def find_fit(
    fits: Iterable[Any], law: str, group: str, task: str | None = None, lang: str | None = None
) -> Any | None:
    """The fit of ``law`` for a group (or a pair, given task and lang), or None."""
    for f in fits:
        if f.law == law and f.group == group and (f.task or None) == task and (f.lang or None) == lang:
            return f
    return None


def load_table(sweep_dir: str | Path) -> pd.DataFrame:
    """The collected results table (results.csv) of a sweep."""
    sd = SweepDir(sweep_dir)
    return coerce_table(read_table(sd.results_csv))


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
