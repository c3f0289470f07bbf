"""The collected long table (``results.csv``): its columns, a row's keys, a typed reader, and group means."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from florenz_scaling.spec.sizes import compute_gmacs

# The keys every long table shares: the run's columns, then where in training and on which pair.
POINT_COLUMNS = (
    "run_id",
    "size",
    "family",
    "params",
    "trainable_params",
    "fwd_gmacs",
    "total_steps",
    "global_batch",
    "step",
    "seen_samples",
    "compute_gmacs",
    "task",
    "lang",
    "group",
)
# One row per (run, step, task, language) of held-out loss; written by ``collect``, read by fit and plot.
TABLE_COLUMNS = (
    *POINT_COLUMNS,
    "loss",
    "samples",
    "tokens",
    "final",
    "partial",
    "diverged",  # the run wrote a non-finite held-out loss: its non-finite records are not in the table
    # cosine or wsd; run, trunk (a WSD trunk segment: its rows are never final) or branch; its start run
    "schedule",
    "role",
    "branch_of",
)


def point(run_id: str, run: dict[str, Any], step: int, task: str, lang: str, group: str) -> dict[str, Any]:
    """The ``POINT_COLUMNS`` of one row of a long table: the run's columns, S = step × global batch and the
    planner's C at that S, and the pair."""
    seen = step * run["global_batch"]
    c = compute_gmacs(seen, run["fwd_gmacs"], run["params"], run["trainable_params"])
    return {
        "run_id": run_id,
        **run,
        "step": step,
        "seen_samples": seen,
        "compute_gmacs": c,
        "task": task,
        "lang": lang,
        "group": group,
    }


_STR_COLUMNS = ("run_id", "size", "family", "task", "lang", "group", "schedule", "role", "branch_of")


def read_table(path: str | Path) -> Any:
    """Read a collected results.csv: ids and names stay strings (an empty group is "", not NaN)."""
    import pandas as pd

    return pd.read_csv(
        path,
        dtype={c: str for c in _STR_COLUMNS},
        keep_default_na=False,
        na_values={"loss": ["", "nan", "NaN"]},
    )


def group_losses(table: Any) -> Any:
    """Per (run, step, group): the sample-weighted mean of the pair losses, as the paper averages groups.

    Takes and returns a pandas DataFrame; the result keeps every per-run column of ``TABLE_COLUMNS`` except
    task/lang, and sums samples and tokens. A mean over only some of a group's pairs would be another
    group's loss, so a (run, step, group) that lacks a pair of the group (one the table has anywhere for
    that group) or has a missing loss gets no row; ``result.attrs["incomplete"]`` lists each one with the
    pairs it lacks.
    """
    import pandas as pd

    run_cols = [c for c in TABLE_COLUMNS if c not in ("task", "lang", "loss", "samples", "tokens", "group")]
    run_cols = [c for c in run_cols if c in table.columns]
    keys = [*run_cols, "group"]
    by_group = table.groupby("group", dropna=False)
    members = {g: set(zip(d["task"], d["lang"], strict=True)) for g, d in by_group}
    t = table.assign(_wl=table["loss"] * table["samples"], _ok=table["loss"].notna())
    grouped = t.groupby(keys, as_index=False, dropna=False, sort=True)
    g = grouped[["_wl", "samples", "tokens"]].sum()
    g["loss"] = g["_wl"] / g["samples"]
    incomplete, complete = [], []
    for key, d in grouped:
        info = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        have = set(zip(d.loc[d["_ok"], "task"], d.loc[d["_ok"], "lang"], strict=True))
        missing = members[info["group"]] - have
        complete.append(not missing and bool(d["_ok"].all()))
        if not complete[-1]:
            incomplete.append(
                {
                    "run_id": info.get("run_id"),
                    "step": info.get("step"),
                    "group": info["group"],
                    "missing": sorted(f"{task}/{lang}" for task, lang in missing),
                }
            )
    # A group with no pair at all at a (run, step) that has other groups is incomplete too.
    present = {(r, s) for r, s in zip(g["run_id"], g["step"], strict=True)} if "run_id" in g else set()
    have_group = set(zip(g.get("run_id", []), g.get("step", []), g["group"], strict=False))
    for run_id, step in sorted(present):
        for group in sorted(members, key=str):
            if (run_id, step, group) not in have_group:
                incomplete.append(
                    {
                        "run_id": run_id,
                        "step": step,
                        "group": group,
                        "missing": sorted(f"{task}/{lang}" for task, lang in members[group]),
                    }
                )
    out = pd.DataFrame(g.drop(columns="_wl")[complete]).reset_index(drop=True)
    out.attrs["incomplete"] = incomplete
    return out
