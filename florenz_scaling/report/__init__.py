"""The sweep at a glance: one self-contained HTML file (DIR/report.html).

It opens with the answer (``fit.headline``: per group the compute exponent next to the paper's with the
fit's verdict, the shared-vs-separate exponent test, the gap law, the conditioning gaps, whether unseen
captioning emerges), then every figure under the claim it supports, embedded as base64 PNG, and what the
model says (a few decoded held-out samples per pair, their images inlined); the plan, run states and full
tables (loss fits, metric fits, conditioning) come last, folded. Fits judged "not identifiable" are listed,
never shown as results. Nothing is fetched from the network (no external CSS, JS, fonts or images), so the
file can be mailed, archived or opened on an offline cluster node.

Built from files only: plan.csv, the ledger and run directories (examples.jsonl), results.csv,
metrics.csv, fits/*.json, design/rounds.jsonl and the figures ``florenz-scaling plot`` wrote with their
list, plots/index.json.
The report never draws: a sweep that was not plotted gets a note saying so.

    markup.py    style, escaping, number formats, tables       sections.py  the answer, the figures
    tables.py    plan, run states, fit and conditioning tables  examples.py  decoded examples, metric fits
    rounds.py    the adaptive design's rounds (design/rounds.jsonl), when the sweep has them
    page.py      ``write_report``: the sections in reading order
"""

from florenz_scaling.fit.headline import conditioning_table
from florenz_scaling.report.examples import examples_section, metric_fits_body, metric_fits_table
from florenz_scaling.report.markup import html_table
from florenz_scaling.report.page import write_report
from florenz_scaling.report.rounds import read_rounds, rounds_section, rounds_table
from florenz_scaling.report.sections import CLAIMS, PLOTS_INDEX, figures_section, headline_section
from florenz_scaling.report.tables import FIT_COLUMNS, conditioning_section, fits_body, fits_table, run_states

__all__ = [
    "CLAIMS",
    "FIT_COLUMNS",
    "PLOTS_INDEX",
    "conditioning_section",
    "conditioning_table",
    "examples_section",
    "figures_section",
    "fits_body",
    "fits_table",
    "headline_section",
    "html_table",
    "metric_fits_body",
    "metric_fits_table",
    "read_rounds",
    "rounds_section",
    "rounds_table",
    "run_states",
    "write_report",
]
