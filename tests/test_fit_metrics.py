"""Fits of generation metrics: the direct power law on −ln Q and the two-stage loss → sigmoid map.

Simulated data with a known law: each form recovers its own law, its rollout predicts the held-out largest
size, and on data made by one form that form extrapolates better. ``metrics_for`` (a metrics.csv for the
shared synthetic sweep) is used by the plot and report tests too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plot_sweeps import sweep_with_metrics

from florenz_scaling.fit import fit_sweep, load_fits, load_metric_fits
from florenz_scaling.fit.metrics import (
    MetricFit,
    direct_q,
    fit_direct,
    fit_metric,
    fit_metrics,
    fit_sigmoid,
    metric_points,
    metric_scale,
    sigmoid_q,
)
from florenz_scaling.results import METRIC_COLUMNS, read_table

SIGMOID = {"lo": 0.02, "span": 0.9, "k": 3.0, "L0": 4.3}
SIZES = (1e6, 2e6, 4e6, 8e6)
BUDGETS = (1e4, 2e4, 4e4)
LOSS_LAW = (1.2, -0.04)  # log10 L = alpha0 + alpha1 log10 C: L from about 4.9 down to 3.6 on this grid
DIRECT = {"log10_A": 2.0, "alpha": 0.25}


def loss_at(C: np.ndarray) -> np.ndarray:
    return 10.0 ** (LOSS_LAW[0] + LOSS_LAW[1] * np.log10(C))


def simulated(
    q_of: str, metric: str = "attr_acc", noise: float = 0.0, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics.csv rows, group losses) of one group and pair on a size × budget grid; Q made by the
    two-stage law (``q_of="two_stage"``) or the direct law (``"direct"``), with Gaussian noise on Q."""
    rng = np.random.default_rng(seed)
    rows, losses = [], []
    scale = metric_scale(metric)
    for N in SIZES:
        for D in BUDGETS:
            C = 6.0 * N * D
            loss = float(loss_at(np.array(C)))
            q = sigmoid_q(SIGMOID, loss) if q_of == "two_stage" else direct_q(DIRECT, C)
            q = float(np.clip(q + noise * rng.standard_normal(), 0.0, 1.0))
            rid = f"n{N:.0e}-d{D:.0e}"
            rows.append(
                {
                    "run_id": rid,
                    "size": f"{N:.0e}",
                    "family": "florence",
                    "params": N,
                    "trainable_params": N,
                    "fwd_gmacs": 3.0 * N,
                    "total_steps": int(D),
                    "global_batch": 1,
                    "step": int(D),
                    "seen_samples": D,
                    "compute_gmacs": C,
                    "task": "caption",
                    "lang": "es",
                    "group": "UC",
                    "metric": metric,
                    "decoding": "greedy",
                    "value": scale * q,
                    "n": 10**6,
                    "final": True,
                    "partial": False,
                }
            )
            losses.append({"run_id": rid, "group": "UC", "loss": loss})
    return pd.DataFrame(rows, columns=list(METRIC_COLUMNS)), pd.DataFrame(losses)


def test_direct_form_recovers_its_power_law() -> None:
    C = np.logspace(9, 13, 12)
    q = direct_q(DIRECT, C)
    fit = fit_direct(C, q)
    assert fit["params"]["alpha"] == pytest.approx(DIRECT["alpha"], abs=1e-9)
    assert fit["params"]["log10_A"] == pytest.approx(DIRECT["log10_A"], abs=1e-9)
    noisy = q * np.exp(0.01 * np.random.default_rng(1).standard_normal(len(C)))
    fit = fit_direct(C, np.clip(noisy, 1e-9, 1 - 1e-9))
    lo, hi = fit["ci"]["alpha"]
    assert lo < DIRECT["alpha"] < hi and hi - lo < 0.1


def test_sigmoid_recovers_the_loss_to_metric_map() -> None:
    L = np.linspace(3.0, 6.0, 25)
    q = sigmoid_q(SIGMOID, L) + 0.003 * np.random.default_rng(2).standard_normal(len(L))
    fit = fit_sigmoid(L, q)
    for k, v in SIGMOID.items():
        assert fit["params"][k] == pytest.approx(v, rel=0.1), k
    assert fit["status"] == "converged" and fit["rss"] < 25 * 0.003**2 * 2
    with pytest.raises(ValueError, match="need 5 points"):
        fit_sigmoid(L[:4], q[:4])


@pytest.mark.parametrize("axis", ["compute", "size"])
def test_two_stage_data_is_rolled_out_best_by_the_two_stage_form(axis: str) -> None:
    metrics, losses = simulated("two_stage", metric="cider")
    pts = metric_points(metrics, losses)
    fit = fit_metric(pts, axis, metric="cider", decoding="greedy", group="UC")
    assert fit.scale == 1000.0 and fit.two_stage is not None and fit.direct is not None
    law = fit.two_stage["loss_law"]
    assert law["alpha0"] == pytest.approx(LOSS_LAW[0], abs=1e-6)
    assert law["alpha1"] == pytest.approx(LOSS_LAW[1], abs=1e-6)
    r = fit.rollout
    assert r["held_out"].startswith("largest size") and r["n_train_sizes"] == len(SIZES) - 1
    assert r["two_stage"]["mean_abs_error"] < 1.0  # CIDEr points, of a 0-1000 scale
    assert r["better"] == "two_stage"
    if axis == "size":
        assert fit.budget == max(BUDGETS) and len(fit.points) == len(SIZES)
        assert fit.compute_at(SIZES[0]) == pytest.approx(6.0 * SIZES[0] * max(BUDGETS), rel=1e-9)


def test_direct_data_is_recovered_and_rolled_out_by_the_direct_form() -> None:
    metrics, losses = simulated("direct")
    (fit,) = [f for f in fit_metrics(metrics, losses)[0] if f.axis == "compute"]
    assert fit.direct["params"]["alpha"] == pytest.approx(DIRECT["alpha"], abs=1e-6)
    assert fit.rollout["direct"]["mean_abs_error"] < 1e-6
    assert fit.rollout["better"] == "direct"
    C = np.array([p["C"] for p in fit.points])
    assert fit.predict_direct(C) == pytest.approx(direct_q(DIRECT, C))


def test_zeros_are_clipped_and_said_and_the_fit_round_trips_through_json() -> None:
    metrics, losses = simulated("two_stage")
    metrics.loc[metrics["params"] == SIZES[0], "value"] = 0.0  # nothing right at the smallest size
    fits, skipped = fit_metrics(metrics, losses)
    assert not skipped and {f.axis for f in fits} == {"compute", "size"}
    size = next(f for f in fits if f.axis == "size")
    assert any("clipped to half a sample" in w for w in size.warnings)
    for f in fits:
        back = MetricFit.from_json(f.to_json())
        assert back == f
        json.loads(f.to_json())  # plain JSON: no NaN


def test_without_losses_only_the_direct_form_is_fitted() -> None:
    metrics, _ = simulated("direct")
    fits, _ = fit_metrics(metrics)
    assert all(f.direct and f.two_stage is None for f in fits)
    assert all(any("two-stage form not fitted" in w for w in f.warnings) for f in fits)
    assert all(f.rollout["two_stage"] is None and f.rollout["better"] is None for f in fits)


def test_a_run_missing_a_pair_of_the_group_gives_no_point() -> None:
    metrics, losses = simulated("direct")
    de = metrics.assign(lang="de")
    both = pd.concat([metrics, de.iloc[1:]], ignore_index=True)  # the first run lacks caption/de
    pts = metric_points(both, losses)
    assert len(pts) == len(metrics) - 1 and metrics["run_id"].iloc[0] not in set(pts["run_id"])


def test_unknown_metric_scale_is_refused() -> None:
    assert metric_scale("attr_colour") == 1.0 and metric_scale("bleu") == 100.0
    assert metric_scale("new_share", [0.1, 0.9]) == 1.0
    with pytest.raises(ValueError, match="unknown scale"):
        metric_scale("new_score", [3.0, 40.0])


def test_fit_sweep_writes_metric_fits_that_load_fits_skips(tmp_path: Path) -> None:
    root = sweep_with_metrics(tmp_path)
    files = sorted(p.name for p in (root / "fits").glob("metric-*.json"))
    keys = [(m, g) for m in ("attr_acc", "cider") for g in ("SC", "ST", "UC")]
    assert files == [f"metric-{m}-{g}.json" for m, g in keys]
    fits = load_metric_fits(root)
    assert {(f.metric, f.group) for f in fits} == set(keys)
    uc = [f for f in fits if f.group == "UC" and f.metric == "cider"]
    decodings = ("greedy", "beam4", "greedy+prefix", "beam4+prefix")
    assert {(f.decoding, f.axis) for f in uc} == {(d, a) for d in decodings for a in ("compute", "size")}
    assert all(f.rollout is not None and f.two_stage is not None for f in uc)  # 4 sizes: rollout possible
    assert all(f.law in ("compute", "size-data", "chinchilla", "saturating-compute") for f in load_fits(root))
    # A sweep whose metrics.csv lost a metric loses that metric's files on the next fit.
    m = read_table(root / "metrics.csv")
    m[m["metric"] == "cider"].to_csv(root / "metrics.csv", index=False)
    fit_sweep(root, bootstrap=0)
    assert not list((root / "fits").glob("metric-attr_acc-*.json"))
