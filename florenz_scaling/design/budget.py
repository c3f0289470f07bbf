"""The ScaleBench protocol: buy runs from a pool within budgets, fit, score the target region by R².

(Li et al., "Spend Less, Fit Better", arXiv 2604.22753; the data and protocol: shared/data/scalebench.)

- Budgets are fractions of the pool's total cost, checkpoints in increasing order. A strategy buys one run
  at a time among those it can still afford within the *last* budget. A run whose cost carries the spend
  past a checkpoint is deferred to the next one: the fit scored at a checkpoint is made from the longest
  prefix of the purchases whose cumulative cost is within it (``checkpoint_prefix``).
- Start: the model-based strategies (``adaptive``, ``v-optimal``, ``d-optimal``) first buy the cheapest
  ⌊2.5·p⌋ runs (p = the law's parameter count), skipping any that would carry the start past 2 % of the pool
  (``start_set``). ``random``, ``cheapest-first`` and ``cost-random`` (probability ∝ 1/cost) buy from
  nothing, as the paper's baselines do.
- Fit: least squares of the raw loss within the law's bounds from ``starts`` random starts drawn with the
  repeat's seed (plus, for the model-based strategies, the optima of the fit they steered by), ``design.lsq``.
- Score: R² over the target rows, clipped to [−1, 1] (−1 when no fit or a non-finite prediction).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from florenz_scaling.design import acquire
from florenz_scaling.design.lsq import Fits, LawFitter

STRATEGIES = ("adaptive", "v-optimal", "d-optimal", "random", "cheapest-first", "cost-random", "all-data")
MODEL_BASED = ("adaptive", "v-optimal", "d-optimal")
START_FACTOR, START_CAP = 2.5, 0.02
N_STARTS = 64  # random starts of a scored fit (the paper's)
N_REFIT_RANDOM = 16  # random starts added to the warm ones at each refit between purchases (4 before: fewer
# competing optima seen; farseer 10 % R² 0.931 with 4, 0.935 with 16 at a0 = 1, 10 repeats)
N_WARM = 6  # distinct optima of the previous fit carried as warm starts


def r2_clipped(y: np.ndarray, pred: np.ndarray) -> float:
    """1 − SS_res/SS_tot over the target rows, clipped to [−1, 1]; −1 for a non-finite prediction."""
    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    if pred.shape != y.shape or not np.all(np.isfinite(pred)):
        return -1.0
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / max(ss_tot, 1e-300)
    return float(np.clip(r2, -1.0, 1.0)) if math.isfinite(r2) else -1.0


def start_set(cost: np.ndarray, n_params: int) -> list[int]:
    """The cheapest ⌊2.5·p⌋ runs, cheapest first, skipping any that would carry the set past 2 % of the pool's
    cost (the cheapest run is always bought)."""
    order = np.argsort(cost, kind="stable")
    cap, want = START_CAP * float(cost.sum()), int(START_FACTOR * n_params)
    picked, spent = [int(order[0])], float(cost[order[0]])
    for i in order[1:]:
        if len(picked) >= want:
            break
        if spent + cost[i] <= cap:
            picked.append(int(i))
            spent += float(cost[i])
    return picked


def checkpoint_prefix(order: Sequence[int], cost: np.ndarray, budget: float) -> int:
    """How many of the purchases in ``order`` count at a checkpoint of ``budget`` (absolute cost)."""
    spent = np.cumsum(cost[np.asarray(order, dtype=int)]) if len(order) else np.zeros(0)
    return int(np.searchsorted(spent, budget * (1 + 1e-12), side="right"))


@dataclass
class Task:
    """A pool (law inputs, losses, costs) and its target region, for one law."""

    fitter: LawFitter
    cost: np.ndarray
    targets: dict[str, np.ndarray]
    target_loss: np.ndarray

    @property
    def total(self) -> float:
        return float(self.cost.sum())

    @property
    def n_params(self) -> int:
        return self.fitter.p


def pool_cost(pool: Any, expression: str) -> np.ndarray:
    """Each run's cost from ``expression`` over the pool's numeric columns (the law-formula whitelist)."""
    from florenz_scaling.fit.laws import expr as ex

    cols = [str(c) for c in pool.columns if np.issubdtype(np.asarray(pool[c]).dtype, np.number)]
    node = ex.parse(expression, cols, "--cost")
    env = {c: np.asarray(pool[c], dtype=float) for c in cols}
    with np.errstate(all="ignore"):
        return np.broadcast_to(np.asarray(ex.evaluate(node, env), dtype=float), (len(pool),)).copy()


def make_task(law: Any, pool: Any, targets: Any, cost: np.ndarray) -> Task:
    """A ``Task`` from tables with the law's inputs and ``loss`` and the pool's per-run ``cost``."""
    X = {k: np.asarray(pool[k], dtype=float) for k in law.inputs}
    T = {k: np.asarray(targets[k], dtype=float) for k in law.inputs}
    cost = np.asarray(cost, dtype=float)
    if cost.shape != (len(pool),) or not np.all(np.isfinite(cost) & (cost > 0)):
        raise ValueError("every run of the pool needs a finite, positive cost")
    # The protocol fits least squares of the raw loss whatever the law's own objective.
    fitter = LawFitter(law, X, np.asarray(pool["loss"], dtype=float), objective="mse-raw")
    return Task(fitter, cost, T, np.asarray(targets["loss"], float))


def choose(
    strategy: str,
    task: Task,
    bought: list[int],
    left: np.ndarray,
    fits: Fits | None,
    rng: np.random.Generator,
    options: dict[str, Any],
) -> int:
    """The next pool row ``strategy`` buys among the affordable rows ``left``."""
    c = task.cost[left]
    if strategy == "random":
        return int(left[rng.integers(len(left))])
    if strategy == "cost-random":
        w = 1.0 / c
        return int(left[rng.choice(len(left), p=w / w.sum())])
    if strategy == "cheapest-first":
        return int(left[np.argmin(c)])
    assert fits is not None
    s = acquire.score(
        strategy, task.fitter, fits, np.asarray(bought), left, c, task.total, task.targets, **options
    )
    s = np.where(np.isfinite(s), s, -np.inf)
    return int(left[np.argmax(s)]) if np.isfinite(s).any() else int(left[np.argmin(c)])


def run_repeat(
    task: Task,
    strategy: str,
    budgets: Sequence[float],
    seed: int,
    *,
    n_starts: int = N_STARTS,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One repeat of one strategy: the purchases, and at each budget the runs counted and the clipped R²."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    rng = np.random.default_rng(seed)
    f, cost, t0 = task.fitter, task.cost, time.perf_counter()
    n_fits = 0
    if strategy == "all-data":
        fits = f.fit(np.arange(len(cost)), f.random_starts(rng, n_starts))
        r2 = r2_clipped(task.target_loss, f.predict(fits.best, task.targets)[0])
        return {
            "r2": [r2] * len(budgets),
            "runs": [len(cost)] * len(budgets),
            "fraction": [1.0] * len(budgets),
            "order": list(range(len(cost))),
            "fits": 1,
            "seconds": time.perf_counter() - t0,
        }
    final = max(budgets) * task.total
    order = start_set(cost, task.n_params) if strategy in MODEL_BASED else []
    fits_at: dict[int, Fits] = {}
    fits = None
    if strategy in MODEL_BASED:
        fits = f.fit(order, f.random_starts(rng, n_starts))
        fits_at[len(order)] = fits
        n_fits += 1
    spent = float(cost[order].sum()) if order else 0.0
    free = np.ones(len(cost), dtype=bool)
    free[order] = False
    while True:
        left = np.flatnonzero(free & (cost <= final - spent + 1e-12 * final))
        if not len(left):
            break
        i = choose(strategy, task, order, left, fits, rng, options or {})
        order.append(i)
        free[i] = False
        spent += float(cost[i])
        if strategy in MODEL_BASED:
            warm = fits.theta[:N_WARM] if fits is not None else np.zeros((0, f.p))
            fits = f.fit(order, np.vstack([warm, f.random_starts(rng, N_REFIT_RANDOM)]), n_polish=1)
            fits_at[len(order)] = fits
            n_fits += 1
    out: dict[str, Any] = {"r2": [], "runs": [], "fraction": []}
    for b in budgets:
        k = checkpoint_prefix(order, cost, b * task.total)
        warm = fits_at[k].theta[:N_WARM] if k in fits_at else np.zeros((0, f.p))
        scored = f.fit(order[:k], np.vstack([warm, f.random_starts(rng, n_starts)]))
        n_fits += 1
        pred = f.predict(scored.best, task.targets)[0] if k else np.full(len(task.target_loss), np.nan)
        out["r2"].append(r2_clipped(task.target_loss, pred))
        out["runs"].append(k)
        out["fraction"].append(float(cost[order[:k]].sum()) / task.total)
    out.update(order=order, fits=n_fits, seconds=time.perf_counter() - t0)
    return out


def benchmark(
    task: Task,
    budgets: Sequence[float],
    *,
    strategies: Sequence[str] = STRATEGIES,
    repeats: int = 10,
    seed: int = 0,
    n_starts: int = N_STARTS,
    options: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[str, int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every strategy over ``repeats`` seeds (repeat r uses seed ``seed + r`` for every strategy): per budget
    the mean and std of the clipped R², and each repeat's numbers."""
    out: dict[str, Any] = {}
    for s in strategies:
        reps = []
        for r in range(repeats):
            res = run_repeat(task, s, budgets, seed + r, n_starts=n_starts, options=(options or {}).get(s))
            reps.append(res)
            if progress is not None:
                progress(s, r, res)
        R = np.array([x["r2"] for x in reps])
        out[s] = {
            "r2_mean": R.mean(axis=0).tolist(),
            "r2_std": R.std(axis=0).tolist(),
            "seconds": float(sum(x["seconds"] for x in reps)),
            "fits": int(sum(x["fits"] for x in reps)),
            "repeats": [
                {k: v for k, v in x.items() if k != "order"} | {"bought": len(x["order"])} for x in reps
            ],
        }
    return {
        "budgets": list(budgets),
        "pool_runs": len(task.cost),
        "pool_cost": task.total,
        "targets": len(task.target_loss),
        "repeats": repeats,
        "strategies": out,
    }


def format_benchmark(result: dict[str, Any], published: dict[str, list[float | None]] | None = None) -> str:
    """A table: per strategy the mean ± std R² at each budget (and a published row where given)."""
    budgets = result["budgets"]
    # One label column wide enough for every row: published labels ("V-optimal (10 laws)") pass 16.
    w = max(16, *(len(x) + 1 for x in (*result["strategies"], *(published or {}))))
    head = f"{'strategy':{w}s}" + "".join(f"{f'{b:.0%}':>16s}" for b in budgets) + f"{'seconds':>10s}"
    lines = [
        f"pool {result['pool_runs']} runs (cost {result['pool_cost']:.4g}), {result['targets']} targets, "
        f"{result['repeats']} repeats; target-region R² clipped to [-1, 1], mean ± std",
        head,
    ]
    for s, v in result["strategies"].items():
        cells = "".join(f"{m:+9.2f} ± {sd:4.2f}" for m, sd in zip(v["r2_mean"], v["r2_std"], strict=True))
        lines.append(f"{s:{w}s}{cells}{v['seconds']:10.1f}")
    for name, row in (published or {}).items():
        cells = "".join(f"{'':>16s}" if x is None else f"{x:+9.2f}{'':7s}" for x in row)
        lines.append(f"{name:{w}s}{cells}")
    return "\n".join(lines)
