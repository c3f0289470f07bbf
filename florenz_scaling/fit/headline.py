"""The answer first: what a sweep's fits say, as plain data, for the report's first section and the terminal.

Per group, the compute exponent (paper Eq. 1) with its interval next to the paper's and the fit's verdict;
the shared-vs-separate exponent tests (fits/joint-*.json); the gap law (fits/gap-*.json); the image and
prompt conditioning gaps (conditioning.csv); and, where generation metrics exist (metrics.csv), whether
unseen captioning (UC) emerges with size. Fits whose verdict is "not identifiable" are never shown as
results: they are listed in ``skipped`` with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from florenz_scaling.fit.emergence import emergence, image_gap, prefix_effect
from florenz_scaling.fit.laws import PAPER_EQ1, get_law
from florenz_scaling.fit.reference import paper_coefficients
from florenz_scaling.fit.verdict import verdict_of

# conditioning.csv probes: the image and the prompt shuffled apart, or (older files) both at once.
EXPONENT = get_law(PAPER_EQ1).shared[0]  # α1, the compute exponent the report opens with
PROBES = (("image_shuffled_loss", "image"), ("prompt_shuffled_loss", "prompt"), ("shuffled_loss", "both"))


def _group_fits(fits: list[Any]) -> list[Any]:
    return [f for f in fits if f.group and not f.task]


def _rows(fits: list[Any], paper: dict | None, groups: list[str]) -> tuple[list[dict], list[dict]]:
    rows, skipped = [], []
    for f in _group_fits(fits):
        v = verdict_of(f)
        if not v.shown:
            skipped.append({"law": f.law, "group": f.group, "reason": "; ".join(v.reasons)})
    for g in groups:
        f = next((f for f in fits if f.law == PAPER_EQ1 and f.group == g and not f.task), None)
        ref = (paper_coefficients(paper, PAPER_EQ1, g) or {}).get(EXPONENT)
        row: dict[str, Any] = {"group": g, "paper": None if ref is None else list(ref[:3])}
        laws = {x.law: verdict_of(x).level for x in _group_fits(fits) if x.group == g}
        row["laws"] = laws
        if f is None:
            row.update(exponent=None, ci=None, verdict=None, reason="no compute fit")
        else:
            v = verdict_of(f)
            shown = v.shown and EXPONENT in f.params
            row.update(
                exponent=f.params.get(EXPONENT) if shown else None,
                ci=f.ci.get(EXPONENT) if shown else None,
                verdict=v.level,
                reason="; ".join(v.reasons),
                interval=f.interval_kind,
            )
        rows.append(row)
    return rows, skipped


def conditioning_table(cond: Any) -> Any:
    """Per run and group of conditioning.csv: the final held-out loss and, for each probe the file has
    (image shuffled, prompt shuffled, or the older both at once), the shuffled loss, the gap and the gap in %
    (sample-weighted over the group's pairs; the older probe's columns are plain "shuffled", "gap")."""
    import pandas as pd

    c = cond[cond["group"].fillna("").astype(str) != ""]
    rows = []
    for (run, group), d in c.groupby(["run_id", "group"], sort=False):
        w = d["samples"].astype(float)
        loss = float((d["loss"].astype(float) * w).sum() / w.sum())
        row = {
            "run": run,
            "size": d["size"].iloc[0],
            "group": group,
            "steps": int(d["step"].iloc[0]),
            "held-out loss": loss,
        }
        for col, what in PROBES:
            values = pd.to_numeric(d[col], errors="coerce") if col in d.columns else None
            if values is None or values.isna().any():
                continue  # a probe this run did not write is empty in the file
            shuffled = float((values * w).sum() / w.sum())
            pre = "" if what == "both" else f"{what} "
            row.update(
                {
                    f"{pre}shuffled": shuffled,
                    f"{pre}gap": shuffled - loss,
                    f"{pre}gap %": 100 * (shuffled - loss) / loss,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def conditioning_gaps(cond: Any) -> list[dict[str, Any]]:
    """Per group, at the run with the most compute (largest model, then longest): the loss increase, in %,
    when the image, the prompt (or, in older files, both at once) come from another sample."""
    if cond is None or not len(cond):
        return []
    c = cond
    if "partial" in c.columns:
        c = c[~c["partial"].astype(str).str.lower().isin(("true", "1"))]
    top = c.sort_values(["params", "total_steps"], kind="stable").groupby("group").tail(1)
    table = conditioning_table(c)
    out = []
    for _, t in top.iterrows():
        rows = table[(table["run"] == t["run_id"]) & (table["group"] == t["group"])] if len(table) else table
        if not len(rows):
            continue
        r = rows.iloc[0]
        row: dict[str, Any] = {"group": str(t["group"]), "run": str(t["run_id"]), "size": str(t["size"])}
        for _, what in PROBES:
            col = "gap %" if what == "both" else f"{what} gap %"
            if col in r.index and r[col] == r[col]:
                row[what] = float(r[col])
        out.append(row)
    return out


# The headline's emergence claim uses the paper's protocol: CIDEr of beam-search decodes seeded with the
# target-language prefix (unseen-language CIDEr 1.7 / 5.6 / 24.1 / 26.6 across F-0.4B … F-11.2B).
HEADLINE_METRICS = ("cider", "attr_acc", "bleu", "chrf")


def _paper_decoding(decodings: set[str]) -> str | None:
    for want in (lambda d: "beam" in d and "prefix" in d, lambda d: "prefix" in d, lambda d: "beam" in d):
        hits = sorted(d for d in decodings if want(d))
        if hits:
            return hits[0]
    return sorted(decodings)[0] if decodings else None


# The answer asks "does it rise with size?" once per protocol metric: the paper's CIDEr, and the world's exact
# attribute accuracy (did the caption say every attribute of every object right).
ANSWER_METRICS = ("cider", "attr_acc")


def split_emergence(entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the answer's entries — CIDEr and exact attribute accuracy in the paper's decoding, or the first
    headline metric there is —, every other entry). The answer asks once per protocol metric; the many other
    metric × decoding combinations go into a folded table rather than drown it."""
    lead = []
    for metric in HEADLINE_METRICS:
        mine = [e for e in entries if e["metric"] == metric]
        choice = _paper_decoding({e["decoding"] for e in mine})
        lead += [e for e in mine if e["decoding"] == choice]
        if lead and metric not in ANSWER_METRICS[:-1]:
            break
    lead = lead or entries[:1]
    return lead, [e for e in entries if all(e is not x for x in lead)]


def build_headline(
    fits: list[Any],
    *,
    paper: dict | None = None,
    joint: list[Any] = (),
    gaps: list[Any] = (),
    conditioning: Any = None,
    metrics: Any = None,
) -> dict[str, Any]:
    """The headline as a dict: groups, rows (one per group), skipped, joint, gaps, conditioning, emergence."""
    from florenz_scaling.results import group_order

    groups = group_order(f.group for f in _group_fits(fits))
    rows, skipped = _rows(fits, paper, groups)
    return {
        "groups": groups,
        "rows": rows,
        "skipped": skipped,
        "joint": [
            {"law": j.law, "groups": j.groups, "shared": j.shared, "separate": j.separate, "test": j.test}
            for j in joint
        ],
        "gaps": [
            {
                "name": g.name,
                "closes": g.closes,
                "evidence": g.evidence,
                "gamma1": g.params["gamma1"],
                "ci": g.ci.get("gamma1"),
                "close_at": g.close_at,
                "close_ci": g.close_ci,
                "gap_at_max": g.gap_at_max,
            }
            for g in gaps
        ],
        "conditioning": conditioning_gaps(conditioning),
        "emergence": emergence(metrics),
        "image_gap": image_gap(conditioning),
        "prefix": prefix_effect(metrics),
    }


def sweep_headline(sweep_dir: str | Path) -> dict[str, Any]:
    """``build_headline`` from a sweep directory's files (fits/, conditioning.csv, metrics.csv)."""
    from florenz_scaling.files import SweepDir
    from florenz_scaling.fit.io import load_fits, load_gaps, load_joint
    from florenz_scaling.fit.reference import load_paper
    from florenz_scaling.results import read_table

    sd = SweepDir(sweep_dir)
    cond = read_table(sd.conditioning_csv) if sd.conditioning_csv.is_file() else None
    metrics = read_table(sd.metrics_csv) if sd.metrics_csv.is_file() else None
    return build_headline(
        load_fits(sd.root),
        paper=load_paper(sd.root),
        joint=load_joint(sd.root),
        gaps=load_gaps(sd.root),
        conditioning=cond,
        metrics=metrics,
    )


def _ci(ci: Any) -> str:
    return f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci and None not in ci else ""


def _values(e: dict[str, Any]) -> str:
    return " → ".join(
        f"{v:.3g}{_ci((lo, hi)) if lo == lo else ''}"
        for v, lo, hi in zip(e["values"], e["lower"], e["upper"], strict=True)
    )


def emergence_answer(e: dict[str, Any]) -> str:
    """The question "does UC caption quality rise with size?" answered for one metric entry, in words."""
    how = f" ({e['decoding']})" if e["decoding"] else ""
    slope = f"slope {e['slope']:+.3g} per decade of P{_ci(e['ci'])}"
    need = ""
    if e["answer"] == "cannot tell":
        need = (
            f"; to tell at this effect, about {e['samples_needed']:,} held-out samples per pair (now "
            f"{min(e['n']):.0f})"
            if e.get("samples_needed")
            else f"; {e.get('why', 'no effect measured')}"
        )
    return (
        f"Does UC {e['metric']}{how} rise with size? {e['answer']}: {_values(e)} at "
        f"{e['seen_samples']:,.0f} seen samples; {slope} ({e['test']}){need}."
    )


def image_answer(g: dict[str, Any] | None) -> str | None:
    if g is None:
        return None
    return (
        f"Does {g['group']} captioning use the image? {g['answer']}: image-shuffle gap {g['gap']:+.3g} "
        f"nats/token{_ci(g['ci'])} at {g['size']} (interval: {g['interval_from']})."
    )


def prefix_answer(p: dict[str, Any] | None) -> str | None:
    if p is None:
        return None
    return (
        f"What does the prefix do? {p['group']} {p['metric']} {p['with']} {p['value_with']:.3g} vs "
        f"{p['without']} {p['value_without']:.3g}: {p['difference']:+.3g}{_ci(p['ci'])} at the largest size "
        "(interval: both decodings' sample-bootstrap errors combined)."
    )


def answer_lines(h: dict[str, Any]) -> list[str]:
    """The paper's questions, once each, as plain sentences (the report's answer says the same)."""
    lead, rest = split_emergence(h["emergence"])
    out = [
        image_answer(h.get("image_gap")),
        *(emergence_answer(e) for e in lead),
        prefix_answer(h.get("prefix")),
    ]
    out = [f"  {x}" for x in out if x]
    if rest:
        n = sum(e["answer"] == "yes" for e in rest)
        out.append(
            f"  other metrics × decodings: {n} of {len(rest)} rise with size by their interval (report)"
        )
    return out


def headline_lines(h: dict[str, Any]) -> list[str]:
    """The headline as terminal lines (the report's first section says the same)."""
    out = ["Headline: compute exponent alpha1 (log10 L = alpha0 + alpha1 log10 C) per group"]
    for r in h["rows"]:
        paper = f"   paper {r['paper'][0]:.3g}{_ci(r['paper'][1:])}" if r["paper"] else ""
        if r["exponent"] is None:
            out.append(f"  {r['group']}: not shown ({r['verdict'] or 'no fit'}: {r['reason']}){paper}")
        else:
            why = f" ({r['reason']})" if r["reason"] else ""
            out.append(f"  {r['group']}: {r['exponent']:.3g}{_ci(r['ci'])}{paper}   {r['verdict']}{why}")
    for j in h["joint"]:
        t = j["test"]
        shared = ", ".join(f"{k} = {v['value']:.3g}{_ci(v['ci'])}" for k, v in j["shared"].items())
        p = "n/a" if t.get("p_value") is None else f"{t['p_value']:.3g}"
        out.append(
            f"  shared vs separate exponents, {j['law']} ({', '.join(j['groups'])}): {shared}; "
            f"p = {p} ({t['method']})"
        )
    for g in h["gaps"]:
        out.append(f"  gap {g['name']}: {g['evidence']}")
    for c in h["conditioning"]:
        probes = ", ".join(f"{what} shuffled +{c[what]:.3g}%" for _, what in PROBES if what in c)
        out.append(f"  conditioning {c['group']} ({c['size']}): {probes or 'no probe'}")
    out += answer_lines(h)
    if h["skipped"]:
        out.append(f"  not shown ({len(h['skipped'])} fits not identifiable):")
        out += [f"    {s['law']} {s['group']}: {s['reason']}" for s in h["skipped"]]
    return out
