"""The report's HTML building blocks: the page style, escaping, number formats, tables, folded sections.

Every text that comes from a file is escaped here (``_e``); only cells the report builds itself pass raw.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
from pathlib import Path
from typing import Any

import pandas as pd

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
img.thumb { width: 64px; height: 64px; image-rendering: pixelated; border: 1px solid #ddd; }
#examples + p + .scroll td { white-space: normal; max-width: 22rem; vertical-align: top; }
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


def _ci(v: Any) -> str:
    if not v or len(v) != 2 or any(x is None or (isinstance(x, float) and math.isnan(x)) for x in v):
        return ""
    return f"[{v[0]:.4g}, {v[1]:.4g}]"


def _p(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return "<0.001" if v < 1e-3 else f"{v:.3f}"


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _num(v: Any, ci: Any = None) -> str:
    return "" if v is None else f"{v:.3g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci and None not in ci else "")


def _folded(anchor: str, title: str, body: list[str]) -> str:
    return f'<details><summary><h2 id="{anchor}">{title}</h2></summary>{"".join(body)}</details>'
