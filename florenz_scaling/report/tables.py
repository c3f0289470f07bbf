"""The folded parts of the report: the plan, run states, the fitted coefficients and conditioning tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from florenz_scaling.files import SweepDir
from florenz_scaling.fit import law_names, paper_coefficients, verdict_of
from florenz_scaling.fit.headline import conditioning_table
from florenz_scaling.report.markup import _ci, _e, _p, _when, html_table
from florenz_scaling.results import group_order


def _plan(sd: SweepDir) -> pd.DataFrame | None:
    """plan.csv (read by its owner, ``plan.read_plan``) with numeric columns as numbers; None without one."""
    from florenz_scaling.plan import read_plan

    if not sd.plan_csv.is_file():
        return None

    def numeric(col: pd.Series) -> pd.Series:
        try:
            return pd.to_numeric(col)
        except (ValueError, TypeError):
            return col  # text columns (run ids, sizes, an empty budget column) stay text, left-aligned

    return pd.DataFrame(read_plan(sd.root)).apply(numeric)


def run_states(sweep_dir: str | Path, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run: state, last ledger event, job id, attempts, and progress from the results table.

    Runs and states are ``launch.status.sweep_status``'s, the ones ``status`` prints, but from files alone:
    the report never asks the scheduler (it may be written far from the cluster), so a job that has not
    started is "submitted" rather than queued, and nothing is written to the ledger.
    """
    from florenz_scaling.launch.status import sweep_status

    rows = []
    for s in sweep_status(sweep_dir, reconcile=False, scheduler=False):
        progress = ""
        if table is not None and len(table):
            t = table[table["run_id"] == s.run_id]
            if len(t):
                progress = f"{int(t['step'].max()):,} / {int(t['total_steps'].max()):,}"
        rows.append(
            {
                "run": s.run_id,
                "state": s.state,
                "DONE marker": "yes" if s.state == "done" else "no",
                "last event": s.last_event,
                "job id": s.last_job_id,
                "time (UTC)": _when(s.last_time),
                "attempts": s.attempts,
                "steps evaluated": progress,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "run",
            "state",
            "DONE marker",
            "last event",
            "job id",
            "time (UTC)",
            "attempts",
            "steps evaluated",
        ],
    )


FIT_COLUMNS = [
    "law",
    "set",
    "method",
    "parameter",
    "value",
    "95% interval",
    "interval",
    "p-value",
    "paper",
    "paper 95% CI",
    "points used",
    "verdict",
    "status",
]


def _where(f: Any) -> str:
    """Which subset a fit is of: the group, or the group and the (task, language) pair."""
    return (f.group or "") + (f" {f.task}·{f.lang}" if f.task else "")


def fits_table(fits: list[Any], paper: dict | None) -> pd.DataFrame:
    """One row per fitted coefficient: value and 95% interval, and the paper's value and interval."""
    rank = {g: i for i, g in enumerate(group_order(f.group for f in fits))}
    order = law_names()  # built-ins first, then laws a researcher wrote
    fits = sorted(
        fits,
        key=lambda f: (
            order.index(f.law) if f.law in order else len(order),
            rank.get(f.group, 99),
            f.task or "",
            f.lang or "",
        ),
    )
    rows = []
    for f in fits:
        ref = paper_coefficients(paper, f.law, f.group) if not f.task else None
        kind = {"bootstrap": f"bootstrap ×{f.bootstrap.n_ok}" if f.bootstrap else "", "t": "OLS t"}.get(
            f.interval_kind, ""
        )
        for name, value in f.params.items():
            p = (ref or {}).get(name)
            bound = f.at_bound.get(name)
            notes = [f.status] + ([f"at {bound} bound"] if bound else [])
            rows.append(
                {
                    "law": f.law,
                    "set": _where(f),
                    "method": f.method,
                    "parameter": name,
                    "value": value,
                    "95% interval": _ci(f.ci.get(name)),
                    "interval": kind if f.ci.get(name) else "",
                    "p-value": _p(f.pvalues.get(name)),
                    "paper": "" if p is None else f"{p[0]:.4g}" + (f" ({p[3]})" if p[3] else ""),
                    "paper 95% CI": "" if p is None else _ci([p[1], p[2]]),
                    "points used": f"{sum(f.used)} / {len(f.used)}" if f.used else f.n_points,
                    "verdict": verdict_of(f).level,
                    "status": "; ".join(n for n in notes if n),
                }
            )
    return pd.DataFrame(rows, columns=FIT_COLUMNS)


def conditioning_section(sd: SweepDir, cond: pd.DataFrame | None) -> list[str]:
    """The report's answer to "does the model look at the image and read the prompt?"."""
    parts = ['<h2 id="conditioning">Does the model use its image and prompt?</h2>']
    if cond is None:
        return parts + ['<p class="muted">No conditioning.csv yet: it is collected from finished runs.</p>']
    parts.append(
        '<p class="caption">At each run\'s last step every held-out target is scored again with the '
        "image and prompt of another sample of the same pair. A gap near 0 means the model predicts "
        "only the target language, ignoring what it is shown: then captioning losses (SC, UC) say "
        "nothing about grounding, whatever their scaling law.</p>"
    )
    return parts + [html_table(conditioning_table(cond), left=("run", "size", "group"))]


def fits_body(fits: list[Any], shown: list[Any], paper: dict | None) -> list[str]:
    """The full tables of the fits that may be shown, per law; the not identifiable ones only named."""
    if not fits:
        return ['<p class="muted">No fits yet: run <code>florenz-scaling fit DIR</code>.</p>']
    parts = [
        '<p class="caption">Coefficients in the fit\'s own units (log10 space for the compute and '
        "size-data laws, as in the paper's Tables 2–3). Intervals are 95% (OLS t-intervals or bootstrap "
        "percentiles). Fits judged not identifiable are listed below, not tabulated.</p>"
    ]
    if shown:
        for law, sub in fits_table(shown, paper).groupby("law", sort=False):
            parts.append(f"<h3>{_e(law)}</h3>")
            parts.append(
                html_table(
                    sub.drop(columns="law"), left=("set", "parameter", "interval", "verdict", "status")
                )
            )
    hidden = [f for f in fits if f not in shown]
    if hidden:
        items = "".join(f"<li>{_e(f.law)} · {_e(_where(f))}: {_e(verdict_of(f).text())}</li>" for f in hidden)
        parts.append(f"<h3>Not identifiable ({len(hidden)})</h3><ul>{items}</ul>")
    warnings = [(f, w) for f in fits for w in f.warnings]
    if warnings:
        items = "".join(f"<li>{_e(f.law)} · {_e(_where(f))}: {_e(w)}</li>" for f, w in warnings)
        parts.append(f"<details><summary>Fit warnings ({len(warnings)})</summary><ul>{items}</ul></details>")
    return parts
