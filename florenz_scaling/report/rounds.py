"""The report's "Design rounds" section: what ``run --adaptive`` bought, round by round.

Read from OUT/design/rounds.jsonl (one JSON object per round, written by ``design.adaptive``); the report may
not import ``design`` (the layering), so the path and the fields are named here and a test checks that they
match what the loop writes. A line that is not a JSON object is skipped and counted, never fatal: the file
is appended to while a study runs, and a half-written last line must not break the report.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from florenz_scaling.files import SweepDir
from florenz_scaling.report.markup import _e, html_table

ROUNDS = ("design", "rounds.jsonl")  # = design.adaptive's design_dir / ROUNDS_FILE


def read_rounds(sd: SweepDir) -> tuple[list[dict[str, Any]], int] | None:
    """The rounds of ``OUT/design/rounds.jsonl`` and how many lines were unreadable; None without the file."""
    path = sd.root.joinpath(*ROUNDS)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    rows, bad = [], 0
    for line in filter(None, (s.strip() for s in text.splitlines())):
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad += 1
    return rows, bad


def _number(v: Any) -> float | None:
    """A finite float, or None for anything else a hand-edited file might hold."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _names(v: Any) -> list[str]:
    return [str(x) for x in v] if isinstance(v, list) else []


def rounds_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One line per round: runs bought (new, in all), GPU-hours spent, the target's estimate and interval."""
    out = []
    for r in rows:
        est, width = _number(r.get("estimate")), _number(r.get("width"))
        lo_hi = r.get("interval") if isinstance(r.get("interval"), list) else []
        lo, hi = (_number(lo_hi[0]), _number(lo_hi[1])) if len(lo_hi) == 2 else (None, None)
        spent, budget = _number(r.get("spent_gpu_h")), _number(r.get("budget_gpu_h"))
        new = _names(r.get("new"))
        out.append(
            {
                "round": r.get("round", ""),
                "runs bought": len(new),
                "new runs": ", ".join(new),
                "runs in all": len(_names(r.get("bought"))),
                "GPU-h spent": "" if spent is None else f"{spent:.4g}",
                "of budget": "" if budget is None else f"{budget:.4g}",
                "target": str(r.get("target", "")),
                "prediction": "" if est is None else f"{est:.5g}",
                "95% interval": "" if lo is None or hi is None else f"[{lo:.5g}, {hi:.5g}]",
                "interval width": "" if width is None else f"{width:.3g}",
                "next / stop": str(r.get("stop") or ", ".join(_names(r.get("next")))),
            }
        )
    return pd.DataFrame(out)


def rounds_section(sd: SweepDir) -> list[str]:
    """The section's HTML (every cell escaped), or nothing when the sweep was not run adaptively."""
    got = read_rounds(sd)
    if got is None:
        return []
    rows, bad = got
    parts = ['<h2 id="rounds">Design rounds</h2>']
    if rows:
        last = rows[-1]
        law = _e(last.get("law", ""))
        parts.append(
            f'<p class="caption">Each round of <code>run --adaptive</code> ({law}): the runs it bought, '
            "the GPU-hours spent so far, and the target's prediction with its 95% interval after fitting "
            "every run bought so far.</p>"
        )
        parts.append(
            html_table(rounds_table(rows), left=("new runs", "target", "next / stop", "95% interval"))
        )
    else:
        parts.append('<p class="muted">design/rounds.jsonl holds no rounds yet.</p>')
    if bad:
        parts.append(f'<p class="muted">{bad} unreadable line(s) in design/rounds.jsonl skipped.</p>')
    return parts
