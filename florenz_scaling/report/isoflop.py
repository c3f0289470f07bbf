"""The report's compute-budget section: how compute-optimal N grows with C, by the three approaches.

Read from DIR/fits/isoflop/<group>.json (``fit --isoflop`` or ``run`` on a budget sweep); a sweep without
them gets no section. Per group: the headline line "compute-optimal N grows as C^a: a = … [CI] (approach 2),
… (1), … (3)", the exponents of N_opt and D_opt per approach, and the per-budget table with each budget's
minimum, its interval and whether the sizes bracket it. The figures are in the Figures section.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from florenz_scaling.fit import load_isoflop
from florenz_scaling.fit.isoflop import IsoFLOP
from florenz_scaling.report.markup import _e, html_table

NAMES = {"approach2": "2: IsoFLOP profiles", "approach1": "1: envelope", "approach3": "3: law allocation"}


def _iv(lo: float | None, hi: float | None, digits: int = 3) -> str:
    return "n/a" if lo is None or hi is None else f"[{lo:.{digits}g}, {hi:.{digits}g}]"


def exponents_table(res: IsoFLOP) -> pd.DataFrame:
    """One row per approach: a with its interval, b with its interval, how many points, how."""
    rows = []
    for key in ("approach2", "approach1", "approach3"):
        e = res.exponents.get(key)
        if e is None:
            continue
        rows.append(
            {
                "approach": NAMES[key] + (f" ({e.law})" if e.law else ""),
                "a (N_opt ∝ C^a)": f"{e.a:.3f}",
                "a 95%": _iv(e.lower, e.upper),
                "b (D_opt ∝ C^b)": f"{e.b:.3f}",
                "b 95%": _iv(e.b_lower, e.b_upper),
                "points": e.n_points,
                "how": e.note,
            }
        )
    return pd.DataFrame(rows)


def budgets_table(res: IsoFLOP) -> pd.DataFrame:
    """One row per budget: runs, sizes, N_opt with its interval, D_opt, L_min, bracketed, and why not used."""
    return pd.DataFrame(
        [
            {
                "budget C [GMACs]": f"{b.C:.4g}",
                "runs": b.n_runs,
                "sizes": len(b.sizes),
                "N_opt": "n/a" if b.N_opt is None else f"{b.N_opt:.4g}",
                "N_opt 95%": _iv(b.lower, b.upper, 4),
                "D_opt": "n/a" if b.D_opt is None else f"{b.D_opt:.4g}",
                "L_min": "n/a" if b.loss_min is None else f"{b.loss_min:.4f}",
                "bracketed": "yes" if b.bracketed else "no",
                "note": b.note or "used",
            }
            for b in res.budgets
        ]
    )


def ungrouped_pairs(sweep_dir: str | Path) -> list[str]:
    """The "task/lang" pairs of the sweep's results that no group lists (their analysis is group "")."""
    from florenz_scaling.files import SweepDir
    from florenz_scaling.results import read_table

    path = SweepDir(sweep_dir).results_csv
    if not path.is_file():
        return []
    t = read_table(path)
    t = t[(t["group"].astype(str) == "") & (t["task"].astype(str) != "")]
    return sorted({f"{task}/{lang}" for task, lang in zip(t["task"], t["lang"], strict=True)})


def group_heading(group: str | None, sweep_dir: str | Path) -> str | None:
    """The heading of one analysis: its group; for group "" the pairs that no group lists, named (without a
    heading, their block read as part of the group above it); None for a CSV's one analysis."""
    if group is None:
        return None
    if group:
        return group
    pairs = ungrouped_pairs(sweep_dir)
    return "Pairs in no group" + (f" (sample-weighted mean of {', '.join(pairs)})" if pairs else "")


def isoflop_section(sweep_dir: str | Path) -> list[str]:
    """The section's HTML parts; [] for a sweep without an IsoFLOP analysis."""
    analyses = load_isoflop(sweep_dir)
    if not analyses:
        return []
    parts = ['<section id="isoflop"><h2 id="compute-optimal">Compute-optimal allocation (budget sweep)</h2>']
    for res in analyses:
        heading = group_heading(res.group, sweep_dir)
        if heading:
            parts.append(f"<h3>{_e(heading)}</h3>")
        parts.append(f'<p class="claim headline-isoflop">{_e(res.headline())}</p>')
        ex = exponents_table(res)
        if len(ex):
            parts.append(f'<div class="scroll">{html_table(ex, left=("approach", "how"))}</div>')
        parts.append(f'<div class="scroll">{html_table(budgets_table(res), left=("note",))}</div>')
        parts += [f'<p class="muted">{_e(w)}</p>' for w in res.warnings]
    return parts + ["</section>"]
