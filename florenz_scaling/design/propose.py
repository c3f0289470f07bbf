"""The ``propose`` command's work: fit what was measured, rank the pool, choose a batch, write its plan.

The plan is written as a sweep YAML that ``florenz-scaling launch`` takes: the measured sweep's resolved
spec with the chosen (size, steps) appended to ``extra_runs`` (``next-sweep.yaml``), plus ``next-plan.csv``
with the chosen runs only. ``launch next-sweep.yaml --out SWEEP --only RUN_ID ...`` then submits exactly
those runs; without ``--only`` it would also submit any run of the original grid not yet done.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from florenz_scaling.design.ensemble import MIN_MEMBERS, ensemble_greedy, ensemble_score, loo_predictions
from florenz_scaling.design.formula import formula_of
from florenz_scaling.design.model import DesignError, LinearModel, Target, law_inputs, linearise
from florenz_scaling.design.pool import Candidate, unmeasured
from florenz_scaling.design.propose_adaptive import propose_adaptive
from florenz_scaling.design.rank import Scored, greedy, score
from florenz_scaling.fit import FitResult, fit_points, get_law
from florenz_scaling.spec import ExtraRun, SweepSpec

METHOD = (
    "Fisher information of the linearised law (delta method with the fit's residual variance); "
    "expected posterior variance after a candidate by a rank-1 update"
)
# The default (design.ensemble): the replay on the OLMo ladder validates it, and it sees misfit the
# Fisher variance is blind to; the linearised one is the fallback when too few leave-one-out refits succeed.
ENSEMBLE_METHOD = (
    "leave-one-out refits of the law (jackknife covariance of their predictions at the target and at "
    "every candidate, misfit included); expected variance after a candidate by the Gaussian update"
)
# The default for every law with a formula form (design.formula): replay's ``adaptive`` criterion, so that
# what propose and run --adaptive buy is what the benchmarked strategy buys (design.acquire).
ADAPTIVE_METHOD = (
    "replay's adaptive criterion (design.acquire): expected drop of the target's predictive variance, "
    "Fisher plus the spread between the fit's near-optimal modes, per cost^0.4; least-squares multistart fit"
)
METHODS = ("adaptive", "ensemble", "linearised")


@dataclass
class Proposal:
    """A ranked pool and the batch chosen from it, for one law and target."""

    law: str
    target: Target
    fit: FitResult | None
    model: LinearModel | None
    estimate: float
    var_now: float
    ranked: list[tuple[Candidate, Scored]]
    chosen: list[tuple[Candidate, Scored]]
    warnings: list[str] = field(default_factory=list)
    method: str = METHOD
    n_points: int = 0  # measured runs fitted (the model's, when there is one)
    sigma: float = float("nan")  # a new run's noise sd, in the space the variances are in

    def __post_init__(self) -> None:
        if self.model is not None:
            self.n_points = self.model.n_points
            self.sigma = math.sqrt(self.model.sigma2)

    def to_dict(self) -> dict[str, Any]:
        """JSON: the target now, the chosen batch in order and the whole ranked pool."""

        def row(c: Candidate, s: Scored) -> dict[str, Any]:
            return {
                "run": c.name,
                **c.to_dict(),
                "var_after": s.var_after,
                "sd_after": math.sqrt(s.var_after),
                "ratio": s.ratio,
                "gain_per_cost": s.gain_per_cost,
                **({"score": s.score} if s.score is not None else {}),
            }

        return {
            "law": self.law,
            "target": self.target.label,
            "target_inputs": self.target.inputs,
            "target_param": self.target.param,
            "estimate": self.estimate,
            "var_now": self.var_now,
            "sd_now": math.sqrt(self.var_now),
            "measured_runs": self.n_points,
            "sigma": self.sigma,
            "method": self.method,
            "fit_method": self.fit.method if self.fit is not None else "lsq",
            "chosen": [row(c, s) for c, s in self.chosen],
            "ranked": [row(c, s) for c, s in self.ranked],
            "warnings": self.warnings,
        }


def propose(
    points: Any,
    law: str,
    target: Target,
    pool: list[Candidate],
    *,
    k: int | None = 1,
    budget: float | None = None,
    fit: FitResult | None = None,
    method: str | None = None,
) -> Proposal:
    """Fit ``law`` to ``points`` (unless ``fit`` is given), rank the unmeasured candidates of ``pool`` by
    expected target-variance reduction per cost, and choose up to ``k`` of them within ``budget``.

    ``method``: ``"adaptive"`` (replay's criterion, ``design.acquire``; the default for a law with a formula
    form and a loss target), ``"ensemble"`` (leave-one-out refits, ``design.ensemble``; the default
    otherwise) or ``"linearised"`` (Fisher). ``fit`` is used by the last two only."""
    if method is None:
        method = (
            "adaptive" if target.inputs is not None and formula_of(get_law(law)) is not None else "ensemble"
        )
    if method not in METHODS:
        raise DesignError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    inputs = law_inputs(law)
    if target.law != law:
        raise DesignError(f"target is for law {target.law}, not {law}")
    missing = [c for c in (*inputs, "loss") if c not in points.columns]
    if missing:
        raise DesignError(f"the measured runs lack {', '.join(missing)}, which law {law} needs")
    if len(points) < get_law(law).n_params:
        raise DesignError(
            f"{len(points)} measured runs cannot fit law {law} ({get_law(law).n_params} "
            "parameters): run a pilot design first (`plan SWEEP --check` says what it needs)"
        )
    if method == "adaptive":
        r = propose_adaptive(points, law, target, pool, k=k, budget=budget)
        return Proposal(
            law,
            target,
            None,
            None,
            r.estimate,
            r.var_now,
            r.ranked,
            r.chosen,
            r.warnings,
            ADAPTIVE_METHOD,
            n_points=r.n_points,
            sigma=r.sigma,
        )
    try:
        res = fit or fit_points(points, law, validate=False)
    except (ValueError, FloatingPointError) as e:
        raise DesignError(f"law {law} cannot be fitted to the measured runs: {e}") from e
    model = linearise(res, points)
    cands = unmeasured(pool, points, inputs)
    if not cands:
        raise DesignError("every candidate of the pool has been measured already; give a larger --pool")
    X = [c.inputs(inputs) for c in cands]
    costs = [c.cost for c in cands]
    warnings = list(res.warnings)
    R = _loo(points, res, model, target, X) if method == "ensemble" else None
    if R is not None:
        used = ENSEMBLE_METHOD
        scored = ensemble_score(R[:, :1], R[:, 1:], costs, model.sigma2)
        picked = ensemble_greedy(R[:, :1], R[:, 1:], costs, model.sigma2, k=k, budget=budget)
    else:
        if method == "ensemble":
            warnings.append(f"fewer than {MIN_MEMBERS} leave-one-out refits succeeded: ranked by {METHOD}")
        used = METHOD
        scored = score(model, [target], X, costs)
        picked = greedy(model, [target], X, costs, k=k, budget=budget)
    scored = sorted(scored, key=lambda s: -s.gain_per_cost)
    var_now = scored[0].var_before
    if budget is not None and not picked:
        warnings.append(f"no candidate fits the budget of {budget:g} (cheapest costs {min(costs):.4g})")
    return Proposal(
        law,
        target,
        res,
        model,
        model.target_value(target),
        var_now,
        [(cands[s.index], s) for s in scored],
        [(cands[s.index], s) for s in picked],
        warnings,
        used,
    )


def _loo(points: Any, res: FitResult, model: LinearModel, target: Target, X: list[Any]) -> Any:
    """Leave-one-out refits' predictions: the target (in its own units: a loss or a parameter), then the
    response (log loss, log10 for the OLS laws) at every candidate; None with fewer than MIN_MEMBERS."""
    import numpy as np

    from florenz_scaling.fit import fitter

    used = points.reset_index(drop=True)
    if res.used and len(res.used) == len(used):
        used = used[np.asarray(res.used, dtype=bool)].reset_index(drop=True)
    fit_fn = fitter(res.law, **({"method": "auto"} if not model.linear else {}))

    def refit(idx: list[int]) -> FitResult | None:
        try:
            return fit_fn(used.iloc[idx])
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            return None

    def predict(r: FitResult, Z: Any) -> Any:
        sub = LinearModel(r, model_inputs(used), model_response(used))
        return np.concatenate([[sub.target_value(target)], sub.response(Z[1:])])

    def model_inputs(d: Any) -> Any:
        return np.column_stack([np.asarray(d[k], dtype=float) for k in model.inputs])

    def model_response(d: Any) -> Any:
        L = np.asarray(d["loss"], dtype=float)
        return np.log10(L) if model.linear else np.log(L)

    Z = np.vstack([np.zeros((1, len(model.inputs))) + 1.0, np.asarray(X, dtype=float)])
    R = loo_predictions(refit, list(range(len(used))), predict, Z)
    return R if len(R) >= MIN_MEMBERS else None


def format_proposal(p: Proposal, unit: str = "GPU-h", limit: int = 20) -> str:
    """The ranked table: the chosen batch in the order picked, then the best of the rest."""
    sd = math.sqrt(p.var_now)
    how = {ENSEMBLE_METHOD: "leave-one-out refits", ADAPTIVE_METHOD: "Fisher + modes of the fit"}.get(
        p.method, "Fisher/delta method"
    )
    lines = [
        f"{p.law} on {p.n_points} measured runs: target {p.target.label} = {p.estimate:.6g} "
        f"± {sd:.3g} (1 sd, {how})",
        f"{'':2s}{'run':28s} {'cost ' + unit:>12s} {'var after':>11s} {'sd after':>10s} {'ratio':>7s} "
        f"{'score' if p.method == ADAPTIVE_METHOD else 'gain/cost':>10s}",
    ]
    shown = [(c, s, True) for c, s in p.chosen]
    chosen = {id(c) for c, _ in p.chosen}
    shown += [(c, s, False) for c, s in p.ranked if id(c) not in chosen][: max(0, limit - len(shown))]
    for c, s, mark in shown:
        lines.append(
            f"{'* ' if mark else '  '}{c.name:28s} {c.cost:12.4g} {s.var_after:11.4g} "
            f"{math.sqrt(s.var_after):10.4g} {s.ratio:7.3f} "
            f"{s.gain_per_cost if s.score is None else s.score:10.3g}"
        )
    total = sum(c.cost for c, _ in p.chosen)
    after = p.chosen[-1][1].var_after if p.chosen else p.var_now
    lines.append(
        f"* chosen: {len(p.chosen)} run(s), {total:.4g} {unit}; target sd {sd:.3g} -> "
        f"{math.sqrt(after):.3g} (expected)"
    )
    lines += [f"warning: {w}" for w in p.warnings]
    return "\n".join(lines)


def write_next(spec: SweepSpec, chosen: list[Candidate], out_dir: str | Path) -> tuple[Path, Path, list[str]]:
    """Write ``next-sweep.yaml`` (the spec plus the chosen runs as ``extra_runs``) and ``next-plan.csv`` (the
    chosen runs only) into ``out_dir``; returns both paths and the chosen runs' ids."""
    from florenz_scaling.plan import make_plan, plan_csv
    from florenz_scaling.spec import dump_yaml

    if any(c.size is None or c.steps is None for c in chosen):
        raise DesignError("the chosen candidates have no size and steps (a CSV pool of N, D): no plan")
    extra = tuple(ExtraRun(c.size, c.steps, c.global_batch) for c in chosen)  # type: ignore[arg-type]
    nxt = dataclasses.replace(spec, extra_runs=(*spec.extra_runs, *extra))
    only = dataclasses.replace(spec, sizes=(), grid=None, budget=None, extra_runs=extra)
    plan = make_plan(only)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dump_yaml(nxt, out / "next-sweep.yaml")
    from florenz_scaling.files import write_atomic

    write_atomic(out / "next-plan.csv", plan_csv(only, plan))
    return out / "next-sweep.yaml", out / "next-plan.csv", [r.run_id for r in plan]


def write_json(p: Proposal, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    """The proposal as JSON at ``path``."""
    from florenz_scaling.files import write_atomic

    write_atomic(path, json.dumps({**p.to_dict(), **(extra or {})}, indent=2) + "\n")
