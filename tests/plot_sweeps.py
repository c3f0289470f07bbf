"""A synthetic but realistic sweep for the plot, report and notebook tests, and checks of its shape.

4 tiny sizes × 4 step budgets, six (task, language) pairs in the paper's three groups, held-out losses from a
size-data power law per group with 1% log-normal noise, evaluations every 50 steps, training losses every
10 steps. A helper module, not a test module: the plot, fit, report and notebook tests import ``make_table``,
``make_sweep`` and ``shared_sweep`` from here (``test_plot_fixtures`` checks the data itself).
"""

from __future__ import annotations

import atexit
import base64
import functools
import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from florenz_scaling.fit import fit_sweep
from florenz_scaling.fit.metrics import metric_scale, sigmoid_q
from florenz_scaling.plot import plot_sweep
from florenz_scaling.results import METRIC_COLUMNS, TABLE_COLUMNS, LossRecord, RecordWriter, read_table

SIZES = {"T-0.5M": 0.52e6, "T-1.3M": 1.3e6, "T-3.7M": 3.7e6, "T-10M": 10.1e6}
STEPS = (100, 200, 400, 800)
BATCH = 32
EVAL_EVERY = 50
PAIRS = {
    "SC": (("caption", "en"), ("caption", "de")),
    "UC": (("caption", "es"), ("caption", "zh")),
    "ST": (("translate", "es"), ("translate", "zh")),
}
# log10 L = b0 + b1 log10 P + b2 log10 S per group: loss 3.5–6 nats, the range of the tiny demo models.
BUDGETS = (1e9, 1e10, 1e11, 1e12, 1e13)  # 6·N·D compute budgets for the Chinchilla allocation
PARTIAL_RUN = "t-10m-s800"  # the shared sweep's one unfinished run
LAW = {"UC": (1.45, -0.09, -0.04), "ST": (1.75, -0.10, -0.12), "SC": (1.55, -0.08, -0.12)}


def run_id(size: str, steps: int) -> str:
    return f"{size.lower()}-s{steps}"


def true_loss(group: str, P: float, S: float) -> float:
    b0, b1, b2 = LAW[group]
    return 10.0 ** (b0 + b1 * np.log10(P) + b2 * np.log10(S))


def make_table(seed: int = 0, partial_run: str | None = None) -> pd.DataFrame:
    """The collected long table (TABLE_COLUMNS), one row per (run, eval step, task, language).

    ``partial_run`` stops that run at half its budget and marks it unfinished.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for size, P in SIZES.items():
        Pt = 0.8 * P
        F = 260 * P / 1e9  # forward GMACs of one sample: ~260 tokens through P parameters
        for total in STEPS:
            rid = run_id(size, total)
            last = total // 2 if rid == partial_run else total
            for step in range(EVAL_EVERY, last + 1, EVAL_EVERY):
                S = step * BATCH
                for group, pairs in PAIRS.items():
                    for i, (task, lang) in enumerate(pairs):
                        # Checkpoints before the schedule's end sit a little above the law (lr not annealed).
                        bump = 1.0 if step == total else 1.04
                        loss = true_loss(group, P, S) * (1.0 + 0.03 * i) * bump * rng.lognormal(0, 0.01)
                        rows.append(
                            {
                                "run_id": rid,
                                "size": size,
                                "family": "florence",
                                "params": int(P),
                                "trainable_params": int(Pt),
                                "fwd_gmacs": F,
                                "total_steps": total,
                                "global_batch": BATCH,
                                "step": step,
                                "seen_samples": S,
                                "compute_gmacs": S * F * (1 + Pt / P),
                                "task": task,
                                "lang": lang,
                                "group": group,
                                "loss": loss,
                                "samples": 64,
                                "tokens": 64 * 30,
                                "final": step == last,
                                "partial": rid == partial_run,
                            }
                        )
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def train_losses(table: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """Training-loss records every 10 steps, a little below the held-out loss, for every run in ``table``."""
    rng = np.random.default_rng(seed)
    rows = []
    for rid, d in table.groupby("run_id"):
        P, last = float(d["params"].iloc[0]), int(d["step"].max())
        for step in range(10, last + 1, 10):
            S = step * BATCH
            loss = 0.95 * true_loss("SC", P, S) * (1 + 2.0 / step) * rng.lognormal(0, 0.02)
            rows.append((rid, step, S, loss))
    return pd.DataFrame(rows, columns=["run_id", "step", "seen_samples", "loss"])


def make_sweep(root: Path, seed: int = 0, partial_run: str | None = None, fits: bool = True) -> Path:
    """A sweep directory as the pipeline leaves it: sweep.yaml, plan.csv, ledger.jsonl, runs/<id>/
    (losses.jsonl, DONE), results.csv and, when the fit package is there and ``fits``, fits/*.json."""
    root.mkdir(parents=True, exist_ok=True)
    table = make_table(seed, partial_run)
    train = train_losses(table)
    (root / "sweep.yaml").write_text("name: synthetic-test\nsizes: [T-0.5M, T-1.3M, T-3.7M, T-10M]\n")
    first = {c: (c, "first") for c in ("size", "params", "trainable_params", "fwd_gmacs")}
    plan = (
        table.groupby("run_id", sort=False)
        .agg(**first, steps=("total_steps", "first"), batch=("global_batch", "first"))
        .reset_index()
    )
    plan["seen_samples"] = plan["steps"] * plan["batch"]
    ratio = 1 + plan["trainable_params"] / plan["params"]
    plan["compute_gmacs"] = plan["seen_samples"] * plan["fwd_gmacs"] * ratio
    plan["est_gpu_hours"] = plan["compute_gmacs"] / 3e7
    plan.to_csv(root / "plan.csv", index=False)
    ledger = []
    for i, rid in enumerate(plan["run_id"]):
        ledger.append({"run_id": rid, "event": "submitted", "job_id": f"100_{i}", "time": 1.7e9 + i})
        if rid != partial_run:
            ledger.append({"run_id": rid, "event": "finished", "job_id": f"100_{i}", "time": 1.7e9 + 600 + i})
    (root / "ledger.jsonl").write_text("".join(json.dumps(e) + "\n" for e in ledger))
    for rid, d in table.groupby("run_id"):
        run = root / "runs" / rid
        w = RecordWriter(run / "losses.jsonl")
        tr = train[train["run_id"] == rid]
        w.write(
            [
                LossRecord(
                    rid,
                    int(r.step),
                    int(r.seen_samples),
                    "train",
                    "",
                    "",
                    "",
                    float(r.loss),
                    BATCH,
                    BATCH * 30,
                )
                for r in tr.itertuples()
            ]
        )
        w.write(
            [
                LossRecord(
                    rid,
                    int(r.step),
                    int(r.seen_samples),
                    "eval",
                    r.task,
                    r.lang,
                    r.group,
                    float(r.loss),
                    int(r.samples),
                    int(r.tokens),
                )
                for r in d.itertuples()
            ]
        )
        w.close()
        if rid != partial_run:
            (run / "DONE").write_text("")
    table.to_csv(root / "results.csv", index=False)
    if fits:
        from florenz_scaling.fit import fit_sweep

        # A short bootstrap keeps the suite quick; the budgets give the Chinchilla fit N*(C) intervals.
        fit_sweep(root, bootstrap=20, budgets=BUDGETS)
    return root


@functools.cache
def shared_sweep() -> Path:
    """One fitted synthetic sweep per test process (building and fitting it takes ~10 s); read it only, or
    copy it (``shutil.copytree``) before changing anything."""
    root = Path(tempfile.mkdtemp(prefix="florenz-test-sweep-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return make_sweep(root / "sweep", partial_run=PARTIAL_RUN)


# ---- the shared sweep with what later stages add: metrics and their fits, figures, decoded examples ------


def metrics_for(table: pd.DataFrame) -> pd.DataFrame:
    """A metrics.csv for a collected results table: every final pair scored by a sigmoid of its loss, for
    CIDEr and attribute accuracy, greedy and beam 4, captions also with the decoder prefix (higher)."""
    rows = []
    final = table[table["final"].astype(str) == "True"]
    for r in final.itertuples():
        for metric in ("cider", "attr_acc"):
            for decoding in ("greedy", "beam4", "greedy+prefix", "beam4+prefix"):
                if decoding.endswith("+prefix") and r.task != "caption":
                    continue
                lift = 1.3 if decoding.endswith("+prefix") else 1.0
                q = min(1.0, lift * float(sigmoid_q({"lo": 0.01, "span": 0.9, "k": 2.5, "L0": 4.2}, r.loss)))
                rows.append(
                    {
                        **{c: getattr(r, c) for c in METRIC_COLUMNS if hasattr(r, c)},
                        "metric": metric,
                        "decoding": decoding,
                        "value": metric_scale(metric) * q,
                        "n": 32,
                    }
                )
    return pd.DataFrame(rows, columns=list(METRIC_COLUMNS))


@functools.cache
def _metrics_sweep() -> Path:
    # Built and fitted once per test process (the fit, the slow part, took ~10 s for each of four callers).
    root = shutil.copytree(shared_sweep(), Path(tempfile.mkdtemp(prefix="florenz-test-metrics-")) / "sweep")
    atexit.register(shutil.rmtree, root.parent, ignore_errors=True)
    metrics_for(read_table(root / "results.csv")).to_csv(root / "metrics.csv", index=False)
    fit_sweep(root, bootstrap=0)
    return root


def sweep_with_metrics(where: Path) -> Path:
    """A copy of the shared sweep with a metrics.csv and its metric fits (as ``fit`` leaves them), for the
    caller to change."""
    return shutil.copytree(_metrics_sweep(), where / "sweep")


FIGURE_HEADINGS = (
    "Held-out loss vs training compute",
    "Predicted loss vs model size at a fixed seen-samples budget",
    "Loss vs seen samples per task and language",
    "Training curves",
    "Fit residuals",
    "Compute-optimal model size (Chinchilla form)",
)


@functools.cache
def _plotted_sweep() -> Path:
    # Drawn once per test process, for the report tests and the browser test alike.
    root = shutil.copytree(shared_sweep(), Path(tempfile.mkdtemp(prefix="florenz-test-plotted-")) / "sweep")
    atexit.register(shutil.rmtree, root.parent, ignore_errors=True)
    plot_sweep(root, formats=("png",))
    return root


def plotted_sweep(where: Path) -> Path:
    """A copy of the shared sweep with its figures drawn (``florenz-scaling plot``), as ``run`` leaves it; the
    caller's own to change."""
    return shutil.copytree(_plotted_sweep(), where / "sweep")


EVIL = "<script>alert(1)</script>"


LARGEST = "t-10m-s400"  # the largest finished run (t-10m-s800 is unfinished but has examples too)


def png_b64(seed: int) -> str:
    rgb = np.random.default_rng(seed).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def write_examples(root: Path, run: str, step: int, *, evil: bool = False) -> None:
    """3 examples per pair and decoding (as ``generate.examples`` writes), captions also with the prefix."""
    lines = []
    for pairs in PAIRS.values():
        for task, lang in pairs:
            for decoding in ("greedy", "beam4", "greedy+prefix", "beam4+prefix"):
                if decoding.endswith("+prefix") and task != "caption":
                    continue
                for i in range(3):
                    lines.append(
                        json.dumps(
                            {
                                "run_id": run,
                                "step": step,
                                "task": task,
                                "lang": lang,
                                "index": i,
                                "decoding": decoding,
                                "prompt": EVIL if evil else f"<CAPTION> {lang}",
                                "prefix": "La imagen muestra" if decoding.endswith("+prefix") else "",
                                "reference": f"ref {run} {i}",
                                "output": f"out {run} {decoding} {i} & more",
                                "image_png": png_b64(i),
                            },
                            ensure_ascii=False,
                        )
                    )
    (root / "runs" / run / "examples.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
