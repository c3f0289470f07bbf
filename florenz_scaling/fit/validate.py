"""Rollout validation: fit on the smaller runs, predict the larger ones, report error and signed bias."""

from __future__ import annotations

from typing import Any

import numpy as np

from florenz_scaling.fit.result import FitResult


def _inputs(law: str, t: Any) -> dict[str, np.ndarray]:
    from florenz_scaling.fit.laws import get_law

    return get_law(law).columns(t)


def rollout(
    table: Any,
    law: str,
    *,
    by: str = "N",
    holdout: float = 1,
    fit_fn: Any = None,
    **fit_kwargs: Any,
) -> dict[str, Any]:
    """Hold out the largest runs, fit ``law`` on the rest, and score the predictions on the held-out runs.

    ``by="N"`` holds out the ``holdout`` largest model sizes (all their runs); ``by="C"`` holds out the
    points with the largest compute: ``holdout`` points if ≥ 1, else that fraction of the points.
    Returns the training fit, per-point predictions, relative errors (pred − obs)/obs, the mean absolute
    relative error and the signed bias (mean relative error: > 0 means the law over-predicts loss, i.e. is
    pessimistic about scaling). ``fit_fn`` overrides the fit (a ``table -> FitResult`` function).
    """
    import pandas as pd

    from florenz_scaling.fit.bootstrap import fitter

    t = pd.DataFrame(table).reset_index(drop=True)
    if by == "N":
        sizes = np.sort(t["N"].unique())
        k = int(holdout)
        if not 1 <= k < len(sizes):
            raise ValueError(f"cannot hold out {k} of {len(sizes)} sizes")
        test = t["N"].to_numpy() >= sizes[-k]
        what = f"largest {k} size(s): N >= {sizes[-k]:.6g}"
    elif by == "C":
        k = int(holdout) if holdout >= 1 else max(1, int(round(holdout * len(t))))
        if not 1 <= k < len(t):
            raise ValueError(f"cannot hold out {k} of {len(t)} points")
        order = np.argsort(t["C"].to_numpy(float), kind="stable")
        test = np.zeros(len(t), dtype=bool)
        test[order[-k:]] = True
        what = f"largest-compute {k} point(s): C >= {t['C'].to_numpy(float)[order[-k]]:.6g}"
    else:
        raise ValueError("by must be 'N' or 'C'")
    fn = fit_fn or fitter(law, **fit_kwargs)
    train_fit: FitResult = fn(t[~test])
    held = t[test]
    pred = np.asarray(train_fit.predict(**_inputs(train_fit.law, held)), dtype=float)
    obs = held["loss"].to_numpy(float)
    rel = (pred - obs) / obs
    return {
        "law": train_fit.law,
        "by": by,
        "held_out": what,
        "n_train": int((~test).sum()),
        "n_test": int(test.sum()),
        "train_params": train_fit.params,
        "train_status": train_fit.status,
        "points": [
            {
                **{k: float(v[i]) for k, v in _inputs(train_fit.law, held).items()},
                "observed": float(obs[i]),
                "predicted": float(pred[i]),
                "rel_error": float(rel[i]),
            }
            for i in range(len(obs))
        ],
        "mean_abs_rel_error": float(np.mean(np.abs(rel))),
        "max_abs_rel_error": float(np.max(np.abs(rel))),
        "signed_bias": float(np.mean(rel)),
    }
