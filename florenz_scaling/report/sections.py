"""The report's first sections: the answer (``fit.headline``) and the figures under the claims they support.

The figures are the PNGs ``florenz-scaling plot`` listed in plots/index.json, embedded as data URIs; the
report never draws.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from florenz_scaling.files import SweepDir
from florenz_scaling.fit import split_emergence
from florenz_scaling.fit.headline import emergence_answer, image_answer, prefix_answer
from florenz_scaling.fit.laws import PAPER_EQ1
from florenz_scaling.report.markup import _e, _num, _png_data_uri, html_table

# Written by florenz_scaling.plot.plot_sweep: {"figures": [{"name", "title", "caption", "files": [...]}]}.
PLOTS_INDEX = "index.json"


def _emergence_rows(entries: list[dict]) -> pd.DataFrame:
    """The folded table: one row per metric × decoding, each size's value with its interval, and the trend."""
    rows = []
    for e in entries:
        rows.append(
            {
                "metric": e["metric"],
                "decoding": e["decoding"],
                "seen samples": f"{e['seen_samples']:,.0f}",
                "UC by size [95%]": " → ".join(
                    _num(v, None if lo != lo else (lo, hi))
                    for v, lo, hi in zip(e["values"], e["lower"], e["upper"], strict=True)
                ),
                "slope per decade of P [95%]": _num(e["slope"], e["ci"]),
                "rises with size?": e["answer"],
            }
        )
    return pd.DataFrame(rows)


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
        body = (
            '<p class="muted">No PNG of this figure in plots/: run <code>florenz-scaling plot DIR</code>'
            " (with PNG among its formats).</p>"
        )
    claim = CLAIMS.get(name, "")
    claim = f'<p class="claim">{_e(claim)}</p>' if claim else ""
    return (
        f'<figure id="fig-{_e(name)}"><h3>{_e(title)}</h3>{claim}'
        f'<p class="caption">{_e(fig.get("caption", ""))}</p>{body}</figure>'
    )


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
    "metric_vs_size": "Claim: what the model says improves with size in every group; for unseen captioning "
    "it is the target-language prefix that lets it emerge (the paper's Fig. 6).",
    "metric_vs_compute": "Claim: the metrics scale predictably with compute; the form with the smaller "
    "rollout error (direct power law or two-stage map) is the one to extrapolate with.",
}


def figures_section(sd: SweepDir, has_results: bool) -> list[str]:
    """Every figure listed in plots/index.json, in its order; or why there are none."""
    parts = ['<h2 id="figures">Figures</h2>']
    index = _read_plots_index(sd)
    if index is None:
        if not has_results:
            return parts + [
                '<p class="muted">No results collected yet: run '
                "<code>florenz-scaling collect DIR</code>, then "
                "<code>florenz-scaling plot DIR</code>.</p>"
            ]
        what = "No plots/ directory" if not sd.plots.is_dir() else "No plots/index.json"
        return parts + [
            f'<p class="muted">{what} in this sweep: run <code>florenz-scaling plot DIR</code>'
            " to draw the figures, then the report again.</p>"
        ]
    inputs = [sd.results_csv, sd.metrics_csv, *(sd.fits.glob("*.json") if sd.fits.is_dir() else ())]
    newest = max((p.stat().st_mtime for p in inputs if p.is_file()), default=0.0)
    if newest > (sd.plots / PLOTS_INDEX).stat().st_mtime:
        parts.append(
            '<p class="muted">The figures are older than results.csv or the fits: run '
            "<code>florenz-scaling plot DIR</code> to redraw them.</p>"
        )
    return parts + [_figure_html(sd, f) for f in index]


def headline_section(h: dict[str, Any]) -> list[str]:
    """The answer first: ``fit.headline.build_headline``'s data as HTML (every cell escaped)."""
    parts = ['<section id="headline"><h2 id="answer">The answer</h2>']
    if not h["rows"]:
        return parts + [
            '<p class="muted">No group fits yet: run <code>florenz-scaling fit DIR</code>.</p></section>'
        ]
    rows = []
    for r in h["rows"]:
        level = r["verdict"] or "no fit"
        rows.append(
            {
                "group": r["group"],
                "compute exponent α1 [95%]": _num(r["exponent"], r["ci"])
                if r["exponent"] is not None
                else "not shown",
                "paper α1 [95%]": _num(*(r["paper"][0], r["paper"][1:])) if r["paper"] else "",
                "verdict": f'<span class="v-{_e(level.split()[0])}">{_e(level)}</span>',
                "why": r["reason"],
                "other laws": ", ".join(f"{k}: {v}" for k, v in r["laws"].items() if k != PAPER_EQ1),
            }
        )
    parts.append(
        '<p class="caption">Per group, the exponent of the paper\'s Eq. 1 (log10 L = α0 + '
        "α1·log10 C on the Pareto frontier) next to the paper's Table 2, and the fit's verdict.</p>"
    )
    parts.append(
        html_table(pd.DataFrame(rows), left=("group", "verdict", "why", "other laws"), raw=("verdict",))
    )
    items = []
    for j in h["joint"]:
        t, shared = j["test"], ", ".join(f"{k} = {_num(v['value'], v['ci'])}" for k, v in j["shared"].items())
        p = "n/a" if t.get("p_value") is None else f"{t['p_value']:.3g}"
        word = (
            ""
            if t.get("p_value") is None
            else (
                " — the groups do not share the exponent" if t["p_value"] < 0.05 else " — consistent with one"
            )
        )
        items.append(
            f"Shared vs separate exponents ({_e(j['law'])}, {_e(', '.join(j['groups']))}): shared "
            f"{_e(shared)}; {_e(t['method'])}, statistic {_e(_num(t.get('statistic')))}, df "
            f"{_e(t['df'])}, p = {_e(p)}{_e(word)}."
        )
    for g in h["gaps"]:
        items.append(f"Gap law {_e(g['name'])} (log10 of the loss ratio vs log10 C): {_e(g['evidence'])}.")
    for c in h["conditioning"]:
        probes = ", ".join(f"{w} shuffled: +{c[w]:.3g}%" for w in ("image", "prompt", "both") if w in c)
        items.append(f"Conditioning, {_e(c['group'])} at {_e(c['size'])}: {_e(probes or 'no probe')}.")
    lead, rest = split_emergence(h["emergence"])
    # The paper's questions, once each, every one with its interval (fit.headline's sentences, escaped).
    asked = [
        image_answer(h.get("image_gap")),
        *(emergence_answer(e) for e in lead),
        prefix_answer(h.get("prefix")),
    ]
    items += [f'<strong class="question">{_e(q)}</strong>' for q in asked if q]
    if not h["emergence"]:
        items.append('<span class="muted">No emergence metrics (metrics.csv) in this sweep.</span>')
    parts.append("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
    if rest:
        n = sum(e["answer"] == "yes" for e in rest)
        parts.append(
            f'<details id="metric-table"><summary>Every other metric and decoding: {n} of {len(rest)} rise '
            "with size by their interval</summary>"
            + html_table(_emergence_rows(rest), left=("metric", "decoding", "rises with size?"))
            + "</details>"
        )
    if h["skipped"]:
        skipped = "".join(
            f"<li>{_e(x['law'])} · {_e(x['group'])}: {_e(x['reason'])}</li>" for x in h["skipped"]
        )
        parts.append(
            f'<p class="muted">Not shown: {len(h["skipped"])} fit(s) not identifiable (kept in '
            f'fits/*.json):</p><ul class="muted">{skipped}</ul>'
        )
    return parts + ["</section>"]
