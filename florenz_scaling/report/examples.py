"""What the model says: decoded held-out samples (runs/<id>/examples.jsonl) and the metric fits' tables.

examples.jsonl is a received file like any other: every text is escaped, each image is shown only when its
base64 text decodes to a PNG no larger than ``MAX_IMAGE_BYTES`` (re-encoded from the decoded bytes, so the
data URI holds nothing but base64), and long texts are cut at ``MAX_TEXT`` characters.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

import pandas as pd

from florenz_scaling.files import SweepDir
from florenz_scaling.report.markup import _e, html_table

PER_PAIR = 2  # examples shown per (task, language) pair: one without and one with the decoder prefix
MAX_IMAGE_BYTES = 32_768  # the held-out images are ~1 kB (64² PNG); a larger one is not a thumbnail
MAX_TEXT = 300
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The decoding shown first among those a run wrote: the paper's beam search, then greedy.
PREFERRED = ("beam4", "greedy")
EXAMPLE_COLUMNS = ["pair", "run", "decoding", "image", "prompt", "given prefix", "reference", "output"]


def _text(v: Any) -> str:
    s = "" if v is None else str(v)
    return s if len(s) <= MAX_TEXT else s[:MAX_TEXT] + " …"


def thumbnail(b64: Any) -> str:
    """An <img> of a base64 PNG as a data URI, or a muted note when it is not a small PNG."""
    if not isinstance(b64, str) or len(b64) > 2 * MAX_IMAGE_BYTES:
        return '<span class="muted">no image</span>'
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return '<span class="muted">no image</span>'
    if not raw.startswith(PNG_SIGNATURE) or len(raw) > MAX_IMAGE_BYTES:
        return '<span class="muted">no image</span>'
    uri = "data:image/png;base64," + base64.b64encode(raw).decode("ascii")
    return f'<img class="thumb" alt="held-out image" src="{uri}">'


def read_examples(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The well-formed records of one examples.jsonl and how many lines were not (never fatal)."""
    rows, bad = [], 0
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return [], 1
    for line in lines:
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(r, dict) and isinstance(r.get("task"), str) and isinstance(r.get("lang"), str):
            rows.append(r)
        else:
            bad += 1
    return rows, bad


def _rank(decoding: str) -> tuple[int, str]:
    base = decoding.split("+")[0]
    return (PREFERRED.index(base) if base in PREFERRED else len(PREFERRED), decoding)


def pick_examples(records: list[dict[str, Any]], per_pair: int = PER_PAIR) -> list[dict[str, Any]]:
    """Per pair, from the records of one run's last step: one without the prefix and one with it
    (translations, never prefixed: two without), different samples where possible."""
    out = []
    pairs = sorted({(r["task"], r["lang"]) for r in records})
    for pair in pairs:
        rs = [r for r in records if (r["task"], r["lang"]) == pair]
        kinds = [False, True] if any(str(r.get("decoding", "")).endswith("+prefix") for r in rs) else [False]
        chosen: list[dict[str, Any]] = []
        for i in range(per_pair):
            want = kinds[i % len(kinds)]
            pool = sorted(
                (r for r in rs if str(r.get("decoding", "")).endswith("+prefix") == want and r not in chosen),
                key=lambda r: _rank(str(r.get("decoding", ""))),
            )
            used = {r.get("index") for r in chosen}
            pick = next((r for r in pool if r.get("index") not in used), pool[0] if pool else None)
            if pick is not None:
                chosen.append(pick)
        out += chosen
    return out


def _run_rank(table: pd.DataFrame | None) -> dict[str, tuple[float, float]]:
    """run_id → (params, total steps): the largest, longest run's examples show what scale buys."""
    if table is None or not len(table) or not {"run_id", "params", "total_steps"} <= set(table.columns):
        return {}
    t = table.groupby("run_id")[["params", "total_steps"]].max()
    return {
        str(r): (float(p), float(s)) for r, p, s in zip(t.index, t["params"], t["total_steps"], strict=True)
    }


def examples_section(sd: SweepDir, table: pd.DataFrame | None) -> list[str]:
    """ "What the model says": for each pair, ``PER_PAIR`` decoded held-out samples of the largest, longest
    run that kept examples for it, at that run's last step."""
    parts = ['<h2 id="examples">What the model says</h2>']
    rank = _run_rank(table)
    by_run: dict[str, list[dict[str, Any]]] = {}
    bad_files = []
    for path in sorted(sd.runs.glob("*/examples.jsonl")) if sd.runs.is_dir() else []:
        rows, bad = read_examples(path)
        if bad:
            bad_files.append(f"{path.parent.name} ({bad} bad line(s) skipped)")
        if rows:
            last = max(int(r.get("step", 0)) if isinstance(r.get("step"), int) else 0 for r in rows)
            by_run[path.parent.name] = [r for r in rows if r.get("step", 0) == last]
    if not by_run:
        return parts + [
            '<p class="muted">No decoded examples (runs/&lt;id&gt;/examples.jsonl) in this '
            "sweep: they are written at each run's final step when generation is enabled.</p>"
        ]
    order = sorted(by_run, key=lambda r: (rank.get(r, (0.0, 0.0)), r), reverse=True)
    best: dict[tuple[str, str], str] = {}
    for run in order:
        for r in by_run[run]:
            best.setdefault((r["task"], r["lang"]), run)
    rows = []
    for (task, lang), run in sorted(best.items()):
        recs = [r for r in by_run[run] if (r["task"], r["lang"]) == (task, lang)]
        for r in pick_examples(recs):
            rows.append(
                {
                    "pair": f"{task} · {lang}",
                    "run": run,
                    "decoding": _text(r.get("decoding")),
                    "image": thumbnail(r.get("image_png")),
                    "prompt": _text(r.get("prompt")),
                    "given prefix": _text(r.get("prefix")),
                    "reference": _text(r.get("reference")),
                    "output": _text(r.get("output")),
                }
            )
    parts.append(
        '<p class="caption">Held-out samples decoded at the run\'s last step, per pair from the '
        "largest and longest run that kept examples: one decoded without the target-language prefix "
        "and, for captions, one seeded with it (the prefix is given, not generated, and not part of "
        "the output or the reference it is scored against).</p>"
    )
    parts.append(
        html_table(
            pd.DataFrame(rows, columns=EXAMPLE_COLUMNS),
            raw=("image",),
            left=tuple(c for c in EXAMPLE_COLUMNS if c != "image"),
        )
    )
    if bad_files:
        parts.append(f'<p class="muted">Damaged examples files: {_e(", ".join(bad_files))}.</p>')
    return parts


# ---- metric fits ---------------------------------------------------------------------------------------

METRIC_FIT_COLUMNS = [
    "metric",
    "group",
    "decoding",
    "axis",
    "points",
    "direct α [95%]",
    "direct R²",
    "loss law α1",
    "sigmoid L0",
    "sigmoid k",
    "rollout |err| direct",
    "rollout |err| two-stage",
    "extrapolates better",
    "notes",
]


def _g(v: Any, digits: int = 3) -> str:
    return "" if v is None else f"{v:.{digits}g}"


def metric_fits_table(fits: list[Any]) -> pd.DataFrame:
    """One row per metric fit (``fit.metrics.MetricFit``): both forms and their rollout errors, side by
    side."""
    from florenz_scaling.results import group_order

    grank = {g: i for i, g in enumerate(group_order(f.group for f in fits))}
    rows = []
    for f in sorted(fits, key=lambda f: (f.metric, grank.get(f.group, 99), f.decoding, f.axis)):
        d, t, r = f.direct or {}, f.two_stage or {}, f.rollout or {}
        ci = (d.get("ci") or {}).get("alpha")
        alpha = _g((d.get("params") or {}).get("alpha"))
        band = f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci and None not in ci else ""
        sig = (t.get("sigmoid") or {}).get("params") or {}
        axis = f.axis + (f" (S = {f.budget:,.0f})" if f.axis == "size" and f.budget else "")
        rows.append(
            {
                "metric": f.metric,
                "group": f.group,
                "decoding": f.decoding,
                "axis": axis,
                "points": f"{sum(p.get('used', False) for p in f.points)} / {len(f.points)}",
                "direct α [95%]": alpha + band,
                "direct R²": _g(d.get("r2")),
                "loss law α1": _g((t.get("loss_law") or {}).get("alpha1")),
                "sigmoid L0": _g(sig.get("L0")),
                "sigmoid k": _g(sig.get("k")),
                "rollout |err| direct": _g((r.get("direct") or {}).get("mean_abs_error")),
                "rollout |err| two-stage": _g((r.get("two_stage") or {}).get("mean_abs_error")),
                "extrapolates better": (r.get("better") or "").replace("_", "-"),
                "notes": "; ".join(f.warnings),
            }
        )
    return pd.DataFrame(rows, columns=METRIC_FIT_COLUMNS)


def metric_fits_body(fits: list[Any]) -> list[str]:
    """The metric fits under the loss fits: a caption saying what the forms are, then a table per metric."""
    if not fits:
        return []
    parts = [
        "<h3>Generation metrics: direct power law vs two-stage map</h3>",
        '<p class="caption">Q is the metric as a share of its maximum. Direct: −ln Q = A·X^(−α) (OLS '
        "in log space; X = compute on the metric's frontier, or parameters at the budget given). "
        "Two-stage: held-out loss from the group's compute law, then "
        "Q = lo + span / (1 + exp(k·(L − L0))). Rollout: fitted without the largest size, mean absolute "
        "error on its points in the metric's units.</p>",
    ]
    table = metric_fits_table(fits)
    for metric, sub in table.groupby("metric", sort=False):
        parts.append(f"<h4>{_e(metric)}</h4>")
        parts.append(
            html_table(
                sub.drop(columns="metric"),
                left=("group", "decoding", "axis", "direct α [95%]", "extrapolates better", "notes"),
            )
        )
    return parts
