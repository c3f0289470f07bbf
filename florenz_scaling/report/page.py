"""``write_report``: the sections in reading order, as one self-contained HTML file (DIR/report.html)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from florenz_scaling.files import SweepDir, write_atomic
from florenz_scaling.fit import (
    build_headline,
    load_fits,
    load_gaps,
    load_joint,
    load_metric_fits,
    load_paper,
    verdict_of,
)
from florenz_scaling.report.examples import examples_section, metric_fits_body
from florenz_scaling.report.isoflop import isoflop_section
from florenz_scaling.report.markup import _CSS, _e, _folded, html_table
from florenz_scaling.report.rounds import rounds_section
from florenz_scaling.report.sections import figures_section, headline_section
from florenz_scaling.report.tables import _plan, conditioning_section, fits_body, run_states
from florenz_scaling.results import read_table


def _sweep_name(sd: SweepDir) -> str:
    if sd.sweep_yaml.is_file():
        import yaml

        spec = yaml.safe_load(sd.sweep_yaml.read_text(encoding="utf-8")) or {}
        if isinstance(spec, dict) and spec.get("name"):
            return str(spec["name"])
    return sd.root.resolve().name


def write_report(sweep_dir: str | Path) -> Path:
    """Write DIR/report.html (self-contained) and return its path; works on a sweep still in progress.

    Reads files only; the figures are the PNGs that ``florenz-scaling plot`` listed in plots/index.json.
    """
    sd = SweepDir(sweep_dir)
    name = _sweep_name(sd)
    table = read_table(sd.results_csv) if sd.results_csv.is_file() else None
    fits = load_fits(sd.root)
    paper = load_paper(sd.root)
    cond = read_table(sd.conditioning_csv) if sd.conditioning_csv.is_file() else None
    metrics = read_table(sd.metrics_csv) if sd.metrics_csv.is_file() else None
    headline = build_headline(
        fits,
        paper=paper,
        joint=load_joint(sd.root),
        gaps=load_gaps(sd.root),
        conditioning=cond,
        metrics=metrics,
    )
    shown = [f for f in fits if verdict_of(f).shown]
    plan = _plan(sd)
    states = run_states(sd.root, table)
    # The state as a coloured badge, built here from escaped text, so passed through as HTML.
    badges = states.assign(state=[f'<span class="state-{_e(s)}">{_e(s)}</span>' for s in states["state"]])
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    n_done = int(states["DONE marker"].eq("yes").sum()) if len(states) else 0
    rounds = rounds_section(sd)  # empty unless the sweep was run with --adaptive
    parts = [
        f"<h1>Scaling sweep report: {_e(name)}</h1>",
        f'<p class="muted">{_e(sd.root.resolve())} · generated {stamp} · {len(states)} runs, '
        f"{n_done} done · {0 if table is None else len(table):,} result rows · {len(fits)} fits</p>",
        '<nav><a href="#answer">The answer</a><a href="#figures">Figures</a>'
        '<a href="#examples">What the model says</a>'
        + ('<a href="#rounds">Design rounds</a>' if rounds else "")
        + '<a href="#plan">Plan</a>'
        '<a href="#runs">Run states</a><a href="#fits">Fits</a><a href="#conditioning">Conditioning</a>'
        "</nav>",
    ]
    parts += headline_section(headline)
    parts += isoflop_section(sd.root)  # a budget sweep: how compute-optimal N and D grow with C
    parts += figures_section(sd, table is not None and not table.empty)
    parts += examples_section(sd, table)
    parts += rounds
    parts.append(
        _folded(
            "plan",
            "Plan",
            [
                html_table(plan, left=tuple(c for c in plan.columns if plan[c].dtype == object))
                if plan is not None
                else '<p class="muted">No plan.csv in this sweep.</p>'
            ],
        )
    )
    parts.append(
        _folded(
            "runs",
            "Run states",
            [
                html_table(
                    badges, left=("run", "state", "last event", "job id", "time (UTC)"), raw=("state",)
                )
                if len(states)
                else '<p class="muted">No runs found.</p>'
            ],
        )
    )
    # The metric fits next to the loss fits: the same section, after them.
    fit_parts = fits_body(fits, shown, paper) + metric_fits_body(load_metric_fits(sd.root))
    parts.append(_folded("fits", "Fits", fit_parts))
    parts.append(
        _folded(
            "conditioning", "Does the model use its image and prompt?", conditioning_section(sd, cond)[1:]
        )
    )
    doc = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(name)} — florenz-scaling report</title><style>{_CSS}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )
    write_atomic(sd.report, doc)
    return sd.report
