"""The collected long table (``results.csv``): its columns, a typed reader, and group means."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# One row per (run, step, task, language) of held-out loss; written by ``collect``, read by fit and plot.
TABLE_COLUMNS = (
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
    "loss",
    "samples",
    "tokens",
    "final",
    "partial",
)


_STR_COLUMNS = ("run_id", "size", "family", "task", "lang", "group")


def read_table(path: str | Path) -> Any:
    """Read a collected results.csv: ids and names stay strings (an empty group is "", not NaN)."""
    import pandas as pd

    return pd.read_csv(path, dtype={c: str for c in _STR_COLUMNS}, keep_default_na=False,
                       na_values={"loss": ["", "nan", "NaN"]})


def group_losses(table: Any) -> Any:
    """Per (run, step, group): the sample-weighted mean of the pair losses, as the paper averages groups.

    Takes and returns a pandas DataFrame; the result keeps every per-run column of ``TABLE_COLUMNS`` except
    task/lang, and sums samples and tokens.
    """
    import pandas as pd

    run_cols = [c for c in TABLE_COLUMNS if c not in ("task", "lang", "loss", "samples", "tokens", "group")]
    run_cols = [c for c in run_cols if c in table.columns]
    t = table.assign(_wl=table["loss"] * table["samples"])
    g = t.groupby([*run_cols, "group"], as_index=False, dropna=False)[["_wl", "samples", "tokens"]].sum()
    g["loss"] = g["_wl"] / g["samples"]
    return pd.DataFrame(g.drop(columns="_wl"))
