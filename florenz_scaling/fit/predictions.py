"""Predictions at target rows with intervals: the fit's prediction and the bootstrap's percentile interval.

Each resample of runs is refitted the way ``fit.bootstrap`` refits it (``law_refits``: all at once where
the law can, else warm starts from the full fit's local optima), and every target row is predicted by every
refit; the interval is the percentile interval of those predictions (a confidence interval of the law's
mean loss there, not of one new run's loss).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from florenz_scaling.fit.bootstrap import law_refits
from florenz_scaling.fit.laws import get_law
from florenz_scaling.fit.result import FitResult


def predict_targets(
    fit: FitResult,
    points: Any,
    targets: Any,
    *,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    groups_col: str = "run_id",
    batched: bool = True,
) -> dict[str, Any]:
    """``{"predictions": [{<the row's inputs>, "prediction", "lower", "upper"}, …], "level", "n_ok", …}``.

    ``fit`` is the law fitted to ``points``; ``targets`` a table with the law's input columns (a ``loss``
    column, when present, is copied as ``observed``). A target lacking an input is refused by its name.
    ``batched=False`` refits the resamples one by one even where the law can refit them all at once.
    """
    import pandas as pd

    law = get_law(fit.law)
    targets = pd.DataFrame(targets).reset_index(drop=True)
    X = law.columns(targets)
    points = pd.DataFrame(points).reset_index(drop=True)
    with np.errstate(all="ignore"):
        point = np.asarray(law.predict(fit.params, **X), dtype=float)
    failures: list[str] = []
    draws = []
    if n > 0:
        for r in law_refits(fit, points, groups_col, n, seed, failures, batched=batched)[1]:
            with np.errstate(all="ignore"):
                draws.append(np.asarray(law.predict(r.params, **X), dtype=float))
    lo_q, hi_q = 50 * (1 - level), 50 * (1 + level)
    D = np.array(draws) if draws else np.full((0, len(targets)), np.nan)
    rows = []
    for i in range(len(targets)):
        col = D[:, i][np.isfinite(D[:, i])] if len(D) else np.zeros(0)
        lo, hi = np.percentile(col, [lo_q, hi_q]).tolist() if len(col) else (None, None)
        row: dict[str, Any] = {k: float(v[i]) for k, v in X.items()}
        row.update(prediction=float(point[i]), lower=lo, upper=hi)
        if "loss" in targets.columns:
            row["observed"] = float(targets["loss"].iloc[i])
        rows.append(row)
    out: dict[str, Any] = {
        "law": fit.law,
        "level": level,
        "interval": f"bootstrap percentile over {groups_col if groups_col in points.columns else 'rows'}",
        "n_resamples": n,
        "n_ok": len(draws),
        "n_failed": len(failures),
        "predictions": rows,
    }
    if "loss" in targets.columns:
        out["r2"] = r_squared(targets["loss"].to_numpy(float), point)
    return out


def r_squared(observed: Any, predicted: Any) -> float:
    """1 − SS_res/SS_tot of predictions against observations (not clipped)."""
    y, p = np.asarray(observed, dtype=float), np.asarray(predicted, dtype=float)
    tss = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - p) ** 2).sum()) / tss if tss > 0 else float("nan")
