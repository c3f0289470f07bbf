"""The sweep at a glance: one self-contained HTML file (DIR/report.html).

It opens with the answer (``fit.headline``: per group the compute exponent next to the paper's with the
fit's verdict, the shared-vs-separate exponent test, the gap law, the conditioning gaps, whether unseen
captioning emerges), then every figure under the claim it supports, embedded as base64 PNG; the plan, run
states and full tables come last, folded. Fits judged "not identifiable" are listed, never shown as
results. Nothing is fetched from the network (no external CSS, JS, fonts or images), so the file can be
mailed, archived or opened on an offline cluster node.

Built from files only: plan.csv, the ledger and run directories, results.csv, fits/*.json and the figures
``florenz-scaling plot`` wrote with their list, plots/index.json. The report never draws: a sweep that was not
plotted gets a note saying so.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from florenz_scaling.files import SweepDir, write_atomic
from florenz_scaling.fit import (
    build_headline,
    load_fits,
    load_gaps,
    load_joint,
    load_paper,
    paper_coefficients,
    verdict_of,
)
from florenz_scaling.fit.headline import conditioning_table
from florenz_scaling.results import group_order, read_table
from florenz_scaling.spec import LAWS

# Written by florenz_scaling.plot.plot_sweep: {"figures": [{"name", "title", "caption", "files": [...]}]}.
PLOTS_INDEX = "index.json"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1250px; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #c0392b; padding-bottom: .3rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: .85rem; margin: .6rem 0; }
th, td { border: 1px solid #ddd; padding: .25rem .55rem; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
.scroll { overflow-x: auto; } .muted { color: #777; } .caption { color: #555; max-width: 70rem; }
figure { margin: 1rem 0 2rem; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
.state-done { color: #1e8449; font-weight: 600; }
.state-failed, .state-diverged { color: #c0392b; font-weight: 600; }
.state-running, .state-submitted, .state-requeued, .state-partial { color: #b9770e; font-weight: 600; }
.state-pending { color: #777; }
nav a { margin-right: 1rem; } .claim { font-weight: 600; max-width: 70rem; }
.v-reliable { color: #1e8449; font-weight: 600; } .v-weak { color: #b9770e; font-weight: 600; }
details > summary h2 { display: inline; } #answer { border-bottom: 2px solid #c0392b; }
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any) -> str:
    """Table cell text: integers with thousands separators, floats to 4 significant digits."""
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e15):
        return f"{int(v):,}"
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def html_table(df: pd.DataFrame, left: tuple[str, ...] = (), raw: tuple[str, ...] = ()) -> str:
    """A DataFrame as an escaped HTML table; ``left`` columns are left-aligned (text).

    Every header and cell is escaped except the cells of ``raw`` columns, which the report builds itself
    (never a column name taken from a file: a received plan.csv may name its columns anything).
    """
    head = "".join(f'<th class="{"l" if c in left else ""}">{_e(c)}</th>' for c in df.columns)
    rows = []
    for rec in df.itertuples(index=False):
        cells = []
        for c, v in zip(df.columns, rec, strict=True):
            v = v.item() if hasattr(v, "item") else v
            cells.append(f'<td class="{"l" if c in left else ""}">{v if c in raw else _e(_fmt(v))}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    body = "".join(rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _when(t: Any) -> str:
    """Ledger time (epoch seconds or ISO text) as UTC 'YYYY-MM-DD HH:MM:SS'."""
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return "" if t is None else str(t)


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
        rows.append({"run": s.run_id, "state": s.state, "DONE marker": "yes" if s.state == "done" else "no",
                     "last event": s.last_event, "job id": s.last_job_id, "time (UTC)": _when(s.last_time),
                     "attempts": s.attempts, "steps evaluated": progress})
    return pd.DataFrame(rows, columns=["run", "state", "DONE marker", "last event", "job id", "time (UTC)",
                                       "attempts", "steps evaluated"])


def _ci(v: Any) -> str:
    if not v or len(v) != 2 or any(x is None or (isinstance(x, float) and math.isnan(x)) for x in v):
        return ""
    return f"[{v[0]:.4g}, {v[1]:.4g}]"


FIT_COLUMNS = ["law", "set", "method", "parameter", "value", "95% interval", "interval", "p-value", "paper",
               "paper 95% CI", "points used", "verdict", "status"]


def _where(f: Any) -> str:
    """Which subset a fit is of: the group, or the group and the (task, language) pair."""
    return (f.group or "") + (f" {f.task}·{f.lang}" if f.task else "")


def fits_table(fits: list[Any], paper: dict | None) -> pd.DataFrame:
    """One row per fitted coefficient: value and 95% interval, and the paper's value and interval."""
    rank = {g: i for i, g in enumerate(group_order(f.group for f in fits))}
    fits = sorted(fits, key=lambda f: (LAWS.index(f.law) if f.law in LAWS else 9,
                                       rank.get(f.group, 99), f.task or "", f.lang or ""))
    rows = []
    for f in fits:
        ref = paper_coefficients(paper, f.law, f.group) if not f.task else None
        kind = {"bootstrap": f"bootstrap ×{f.bootstrap.n_ok}" if f.bootstrap else "", "t": "OLS t"}.get(
            f.interval_kind, "")
        for name, value in f.params.items():
            p = (ref or {}).get(name)
            bound = f.at_bound.get(name)
            notes = [f.status] + ([f"at {bound} bound"] if bound else [])
            rows.append({"law": f.law, "set": _where(f), "method": f.method, "parameter": name,
                         "value": value,
                         "95% interval": _ci(f.ci.get(name)), "interval": kind if f.ci.get(name) else "",
                         "p-value": _p(f.pvalues.get(name)),
                         "paper": "" if p is None else f"{p[0]:.4g}" + (f" ({p[3]})" if p[3] else ""),
                         "paper 95% CI": "" if p is None else _ci([p[1], p[2]]),
                         "points used": f"{sum(f.used)} / {len(f.used)}" if f.used else f.n_points,
                         "verdict": verdict_of(f).level,
                         "status": "; ".join(n for n in notes if n)})
    return pd.DataFrame(rows, columns=FIT_COLUMNS)


def _p(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return "<0.001" if v < 1e-3 else f"{v:.3f}"


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _read_plots_index(sd: SweepDir) -> list[dict[str, Any]] | None:
    """The figures ``florenz-scaling plot`` listed in plots/index.json; None without a readable index."""
    path = sd.plots / PLOTS_INDEX
    try:
        figures = json.loads(path.read_text(encoding="utf-8")).get("figures")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(figures, list):
        return None
    return [f for f in figures if isinstance(f, dict) and f.get("name")]


def _figure_html(sd: SweepDir, fig: dict[str, Any]) -> str:
    """One figure of the index: heading, caption and its PNG inlined (or a note when the PNG is missing)."""
    name, title = str(fig["name"]), str(fig.get("title") or fig["name"])
    png = next((sd.plots / str(f) for f in fig.get("files") or () if str(f).endswith(".png")), None)
    if png is not None and png.is_file():
        body = f'<img alt="{_e(title)}" src="{_png_data_uri(png)}">'
    else:
        body = ('<p class="muted">No PNG of this figure in plots/: run <code>florenz-scaling plot DIR</code>'
                " (with PNG among its formats).</p>")
    claim = CLAIMS.get(name, "")
    claim = f'<p class="claim">{_e(claim)}</p>' if claim else ""
    return (f'<figure id="fig-{_e(name)}"><h3>{_e(title)}</h3>{claim}'
            f'<p class="caption">{_e(fig.get("caption", ""))}</p>{body}</figure>')


# The claim each figure supports, shown above it (figures the report does not know get none).
CLAIMS = {
    "loss_vs_compute": "Claim: held-out loss falls as a power of compute in every group; the slopes are the "
                       "compute exponents of the answer above.",
    "loss_vs_params": "Claim: at a fixed data budget, larger models reach lower loss (size-data law).",
    "loss_vs_samples": "Claim: every task and language improves with more seen samples, at its own rate.",
    "training_curves": "Claim: the runs trained stably, so their final losses are fair points for the laws.",
    "fit_residuals": "Claim: the laws fit without systematic residuals (a trend would mean a wrong form).",
    "compute_optimal": "Claim (only if the Chinchilla fit is identifiable): how to split compute between "
                       "model size and data.",
}


def figures_section(sd: SweepDir, has_results: bool) -> list[str]:
    """Every figure listed in plots/index.json, in its order; or why there are none."""
    parts = ['<h2 id="figures">Figures</h2>']
    index = _read_plots_index(sd)
    if index is None:
        if not has_results:
            return parts + ['<p class="muted">No results collected yet: run '
                            "<code>florenz-scaling collect DIR</code>, then "
                            "<code>florenz-scaling plot DIR</code>.</p>"]
        what = "No plots/ directory" if not sd.plots.is_dir() else "No plots/index.json"
        return parts + [f'<p class="muted">{what} in this sweep: run <code>florenz-scaling plot DIR</code>'
                        " to draw the figures, then the report again.</p>"]
    inputs = [sd.results_csv, *(sd.fits.glob("*.json") if sd.fits.is_dir() else ())]
    newest = max((p.stat().st_mtime for p in inputs if p.is_file()), default=0.0)
    if newest > (sd.plots / PLOTS_INDEX).stat().st_mtime:
        parts.append('<p class="muted">The figures are older than results.csv or the fits: run '
                     "<code>florenz-scaling plot DIR</code> to redraw them.</p>")
    return parts + [_figure_html(sd, f) for f in index]


def _sweep_name(sd: SweepDir) -> str:
    if sd.sweep_yaml.is_file():
        import yaml

        spec = yaml.safe_load(sd.sweep_yaml.read_text(encoding="utf-8")) or {}
        if isinstance(spec, dict) and spec.get("name"):
            return str(spec["name"])
    return sd.root.resolve().name


def conditioning_section(sd: SweepDir, cond: pd.DataFrame | None) -> list[str]:
    """The report's answer to "does the model look at the image and read the prompt?"."""
    parts = ['<h2 id="conditioning">Does the model use its image and prompt?</h2>']
    if cond is None:
        return parts + ['<p class="muted">No conditioning.csv yet: it is collected from finished runs.</p>']
    parts.append('<p class="caption">At each run\'s last step every held-out target is scored again with the '
                 "image and prompt of another sample of the same pair. A gap near 0 means the model predicts "
                 "only the target language, ignoring what it is shown: then captioning losses (SC, UC) say "
                 "nothing about grounding, whatever their scaling law.</p>")
    return parts + [html_table(conditioning_table(cond), left=("run", "size", "group"))]


def fits_body(fits: list[Any], shown: list[Any], paper: dict | None) -> list[str]:
    """The full tables of the fits that may be shown, per law; the not identifiable ones only named."""
    if not fits:
        return ['<p class="muted">No fits yet: run <code>florenz-scaling fit DIR</code>.</p>']
    parts = ['<p class="caption">Coefficients in the fit\'s own units (log10 space for the compute and '
             "size-data laws, as in the paper's Tables 2–3). Intervals are 95% (OLS t-intervals or bootstrap "
             "percentiles). Fits judged not identifiable are listed below, not tabulated.</p>"]
    if shown:
        for law, sub in fits_table(shown, paper).groupby("law", sort=False):
            parts.append(f"<h3>{_e(law)}</h3>")
            parts.append(html_table(sub.drop(columns="law"), left=("set", "parameter", "interval", "verdict",
                                                                    "status")))
    hidden = [f for f in fits if f not in shown]
    if hidden:
        items = "".join(f"<li>{_e(f.law)} · {_e(_where(f))}: {_e(verdict_of(f).text())}</li>" for f in hidden)
        parts.append(f"<h3>Not identifiable ({len(hidden)})</h3><ul>{items}</ul>")
    warnings = [(f, w) for f in fits for w in f.warnings]
    if warnings:
        items = "".join(f"<li>{_e(f.law)} · {_e(_where(f))}: {_e(w)}</li>" for f, w in warnings)
        parts.append(f"<details><summary>Fit warnings ({len(warnings)})</summary><ul>{items}</ul></details>")
    return parts


def _num(v: Any, ci: Any = None) -> str:
    return "" if v is None else f"{v:.3g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci and None not in ci else "")


def headline_section(h: dict[str, Any]) -> list[str]:
    """The answer first: ``fit.headline.build_headline``'s data as HTML (every cell escaped)."""
    parts = ['<section id="headline"><h2 id="answer">The answer</h2>']
    if not h["rows"]:
        return parts + ['<p class="muted">No group fits yet: run <code>florenz-scaling fit DIR</code>.</p>'
                        "</section>"]
    rows = []
    for r in h["rows"]:
        level = r["verdict"] or "no fit"
        rows.append({"group": r["group"], "compute exponent α1 [95%]": _num(r["exponent"], r["ci"])
                     if r["exponent"] is not None else "not shown",
                     "paper α1 [95%]": _num(*(r["paper"][0], r["paper"][1:])) if r["paper"] else "",
                     "verdict": f'<span class="v-{_e(level.split()[0])}">{_e(level)}</span>',
                     "why": r["reason"], "other laws": ", ".join(f"{k}: {v}" for k, v in r["laws"].items()
                                                                 if k != "compute")})
    parts.append('<p class="caption">Per group, the exponent of the paper\'s Eq. 1 (log10 L = α0 + '
                 "α1·log10 C on the Pareto frontier) next to the paper's Table 2, and the fit's verdict.</p>")
    parts.append(html_table(pd.DataFrame(rows), left=("group", "verdict", "why", "other laws"),
                            raw=("verdict",)))
    items = []
    for j in h["joint"]:
        t, shared = j["test"], ", ".join(f"{k} = {_num(v['value'], v['ci'])}" for k, v in j["shared"].items())
        p = "n/a" if t.get("p_value") is None else f"{t['p_value']:.3g}"
        word = "" if t.get("p_value") is None else (
            " — the groups do not share the exponent" if t["p_value"] < 0.05 else " — consistent with one")
        items.append(f"Shared vs separate exponents ({_e(j['law'])}, {_e(', '.join(j['groups']))}): shared "
                     f"{_e(shared)}; {_e(t['method'])}, statistic {_e(_num(t.get('statistic')))}, df "
                     f"{_e(t['df'])}, p = {_e(p)}{_e(word)}.")
    for g in h["gaps"]:
        items.append(f"Gap law {_e(g['name'])} (log10 of the loss ratio vs log10 C): {_e(g['evidence'])}.")
    for c in h["conditioning"]:
        probes = ", ".join(f"{w} shuffled: +{c[w]:.3g}%" for w in ("image", "prompt", "both") if w in c)
        items.append(f"Conditioning, {_e(c['group'])} at {_e(c['size'])}: {_e(probes or 'no probe')}.")
    for e in h["emergence"]:
        vals = " → ".join(f"{v:.3g}" for v in e["values"])
        ref = (f"; {e['reference']} at the largest size: {e['reference_at_largest']:.3g}"
               if e["reference"] else "")
        word = "emerges (rises with size)" if e["emerges"] else "does not emerge (no rise with size)"
        items.append(f"Unseen captioning {_e(word)}: UC {_e(e['metric'])} {_e(e['decoding'])} by model size "
                     f"at {e['seen_samples']:,.0f} seen samples: {_e(vals)}{_e(ref)}.")
    if not h["emergence"]:
        items.append('<span class="muted">No emergence metrics (metrics.csv) in this sweep.</span>')
    parts.append("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
    if h["skipped"]:
        skipped = "".join(f"<li>{_e(x['law'])} · {_e(x['group'])}: {_e(x['reason'])}</li>"
                          for x in h["skipped"])
        parts.append(f'<p class="muted">Not shown: {len(h["skipped"])} fit(s) not identifiable (kept in '
                     f"fits/*.json):</p><ul class=\"muted\">{skipped}</ul>")
    return parts + ["</section>"]


def _folded(anchor: str, title: str, body: list[str]) -> str:
    return f'<details><summary><h2 id="{anchor}">{title}</h2></summary>{"".join(body)}</details>'


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
    headline = build_headline(fits, paper=paper, joint=load_joint(sd.root), gaps=load_gaps(sd.root),
                              conditioning=cond, metrics=metrics)
    shown = [f for f in fits if verdict_of(f).shown]
    plan = _plan(sd)
    states = run_states(sd.root, table)
    # The state as a coloured badge, built here from escaped text, so passed through as HTML.
    badges = states.assign(state=[f'<span class="state-{_e(s)}">{_e(s)}</span>' for s in states["state"]])
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    n_done = int(states["DONE marker"].eq("yes").sum()) if len(states) else 0
    parts = [f"<h1>Scaling sweep report: {_e(name)}</h1>",
             f'<p class="muted">{_e(sd.root.resolve())} · generated {stamp} · {len(states)} runs, '
             f"{n_done} done · {0 if table is None else len(table):,} result rows · {len(fits)} fits</p>",
             '<nav><a href="#answer">The answer</a><a href="#figures">Figures</a><a href="#plan">Plan</a>'
             '<a href="#runs">Run states</a><a href="#fits">Fits</a><a href="#conditioning">Conditioning</a>'
             "</nav>"]
    parts += headline_section(headline)
    parts += figures_section(sd, table is not None and not table.empty)
    parts.append(_folded("plan", "Plan", [
        html_table(plan, left=tuple(c for c in plan.columns if plan[c].dtype == object))
        if plan is not None else '<p class="muted">No plan.csv in this sweep.</p>']))
    parts.append(_folded("runs", "Run states", [
        html_table(badges, left=("run", "state", "last event", "job id", "time (UTC)"), raw=("state",))
        if len(states) else '<p class="muted">No runs found.</p>']))
    parts.append(_folded("fits", "Fits", fits_body(fits, shown, paper)))
    parts.append(_folded("conditioning", "Does the model use its image and prompt?",
                         conditioning_section(sd, cond)[1:]))
    doc = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<title>{_e(name)} — florenz-scaling report</title><style>{_CSS}</style></head>"
           f"<body>{''.join(parts)}</body></html>\n")
    write_atomic(sd.report, doc)
    return sd.report
