"""Replay the adaptive loop on runs that already exist: what would it have saved on a past sweep?

The pool has one row per finished run (N, D, C as its cost, loss); a run's loss is revealed only when a
strategy buys it. After every purchase the law is refitted and each target predicted; the error there is
|prediction / truth − 1|. Strategies: ``adaptive`` (pilot, then the largest expected reduction of the
spread of leave-one-out refits at the targets per unit of cost, ``design.ensemble``: it sees misfit as well
as noise), ``variance`` (the same pilot, then the linearised law's expected variance reduction per cost,
``design.rank``: blind to misfit, kept as the baseline it improves on), ``random`` (random orders, one per
seed), ``cheapest-first``, ``full`` (the whole pool at once) and the ``d-optimal`` baseline (the same pilot,
then the largest gain in log det of the information per cost, blind to the targets). ``compute_fraction`` is
the fraction of the pool's total cost after which every target *stays* predicted within the tolerance
(None if never).

``hindsight`` (opt-in: ``strategies=(*DEFAULT_STRATEGIES, "hindsight")``) is not a strategy a user could
run: it knows every loss and finds, exhaustively over the sets that contain the pilot, the cheapest set
from which some order of the remaining runs keeps every target within the tolerance. It is the lower
bound that the other strategies' fractions are measured against on a past sweep (how much of a miss is
the criterion's, how much the pool's).

The adaptive pilot is the cheapest-first prefix that ``check_design`` passes (enough points and levels,
D/N spread, condition number): before that no fit of the law is meaningful.

Engines. A law with a formula form (``design.formula``: every formula law, and chinchilla and
saturating-compute through the adapter) is refitted by ``design.poolfits`` (batched Levenberg–Marquardt
warm-started from the previous fit, the law's own objective), and its ``adaptive``, ``variance`` and
``d-optimal`` picks are ``design.acquire``'s criteria around that fit: ``adaptive`` is the criterion of
``replay --budgets``, ``propose`` and ``run --adaptive``; ``variance`` is the V-optimal gain per unit of cost
(the linearised baseline). The OLS laws keep their own fitter and the leave-one-out ensemble
(``engine="builtin"`` forces that path for any law; ``fit_kwargs`` reach only it).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from florenz_scaling.design.check import check_design
from florenz_scaling.design.ensemble import MIN_MEMBERS, ensemble_score, loo_predictions
from florenz_scaling.design.formula import formula_of
from florenz_scaling.design.model import DesignError, LinearModel, Target, law_inputs, observed_response
from florenz_scaling.design.poolfits import PoolFits
from florenz_scaling.design.rank import d_optimal, score
from florenz_scaling.fit import FitResult, fitter, get_law, is_law, law_names

DEFAULT_STRATEGIES = ("adaptive", "variance", "d-optimal", "random", "cheapest-first", "full")
STRATEGIES = (*DEFAULT_STRATEGIES, "hindsight")
HINDSIGHT_MAX_FREE = 14  # 2^14 fits beyond the pilot (minutes); larger pools are refused
ENGINES = ("auto", "lsq", "builtin")


@dataclass
class Curve:
    """One strategy's purchases in order, and after each: cumulative cost and the error at every target."""

    strategy: str
    bought: list[str] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    errors: list[list[float | None]] = field(default_factory=list)  # None: no fit possible yet

    def compute_fraction(self, total: float, tolerance: float) -> float | None:
        """Fraction of ``total`` spent when every target is within ``tolerance`` from then on, or None."""
        ok = [bool(e) and all(v is not None and v <= tolerance for v in e) for e in self.errors]
        if not ok or not ok[-1]:
            return None
        k = len(ok) - 1
        while k > 0 and ok[k - 1]:
            k -= 1
        return self.cost[k] / total

    def to_dict(self, total: float, tolerance: float) -> dict[str, Any]:
        """JSON: the curve and its compute fraction."""
        return {
            "strategy": self.strategy,
            "compute_fraction": self.compute_fraction(total, tolerance),
            "steps": [
                {"bought": b, "cost": c, "fraction": c / total, "errors": e}
                for b, c, e in zip(self.bought, self.cost, self.errors, strict=True)
            ],
        }


def check_inputs(law: str, pool: Any, targets: Any) -> tuple[str, ...]:
    """The law's inputs; raises ``DesignError`` when the law, the pool or the targets cannot be used."""
    if not is_law(law):
        raise DesignError(f"unknown law {law!r}; replay handles {', '.join(law_names())}")
    inputs = law_inputs(law)
    for what, t in (("pool", pool), ("targets", targets)):
        missing = [c for c in (*inputs, "loss") if c not in t.columns]
        if missing:
            raise DesignError(f"{what}: no column {', '.join(missing)}, which law {law} needs")
        if not np.all(np.asarray(t[list(inputs)], dtype=float) > 0):
            raise DesignError(f"{what}: {', '.join(inputs)} must be positive")
    if "C" not in pool.columns or not np.all(np.asarray(pool["C"], dtype=float) > 0):
        raise DesignError("pool needs a positive cost C for every run")
    p = get_law(law).n_params
    if len(pool) <= p:
        raise DesignError(f"pool has {len(pool)} runs; law {law} has {p} parameters")
    return inputs


class Replayer:
    """The pool, the targets and the fitter of one replay; ``curve(order)`` refits along a purchase order."""

    def __init__(
        self,
        pool: Any,
        targets: Any,
        law: str,
        *,
        fit_kwargs: dict[str, Any] | None = None,
        engine: str = "auto",
    ) -> None:
        self.inputs = check_inputs(law, pool, targets)
        self.law = law
        self.pool = pool.reset_index(drop=True)
        self.X = np.column_stack([np.asarray(self.pool[k], dtype=float) for k in self.inputs])
        self.cost = np.asarray(self.pool["C"], dtype=float)
        self.total = float(self.cost.sum())
        self.names = [str(v) for v in self.pool.get("run_id", [f"row{i}" for i in range(len(self.pool))])]
        self.targets = [
            Target(law, inputs={k: float(row[k]) for k in self.inputs}) for _, row in targets.iterrows()
        ]
        self.truth = np.asarray(targets["loss"], dtype=float)
        self.n_params = get_law(law).n_params
        self.fit_fn = fitter(law, **{**get_law(law).replay_options(), **(fit_kwargs or {})})
        self._cache: dict[frozenset[int], FitResult | None] = {}
        if engine not in ENGINES:
            raise DesignError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
        has_form = formula_of(get_law(law)) is not None
        if engine == "lsq" and not has_form:
            raise DesignError(f"law {law} has no formula form for the lsq engine (an OLS law)")
        self.fast: PoolFits | None = None
        if engine != "builtin" and has_form:
            loss = np.asarray(self.pool["loss"], dtype=float)
            self.fast = PoolFits(get_law(law), {k: self.X[:, j] for j, k in enumerate(self.inputs)}, loss)
            self.target_X = {k: np.array([t.inputs[k] for t in self.targets]) for k in self.inputs}  # type: ignore[index]

    def fit(self, idx: Sequence[int]) -> Any:
        """The law fitted to the runs ``idx`` (cached: strategies revisit the same sets), None if it fails:
        a ``FitResult``, or the lsq engine's ``FitPrediction`` (``predict`` and ``params`` alike)."""
        if self.fast is not None:
            return self.fast.result(idx)
        key = frozenset(int(i) for i in idx)
        if key not in self._cache:
            res = None
            if len(key) >= self.n_params:
                try:
                    res = self.fit_fn(self.pool.iloc[sorted(key)])
                except (ValueError, np.linalg.LinAlgError, FloatingPointError):
                    res = None
            self._cache[key] = res
        return self._cache[key]

    def errors(self, res: FitResult | None) -> list[float | None]:
        """|prediction / truth − 1| at each target (None without a fit, or for a non-finite prediction)."""
        if res is None:
            return [None] * len(self.targets)
        out: list[float | None] = []
        for t, true in zip(self.targets, self.truth, strict=True):
            with np.errstate(all="ignore"):
                pred = float(res.predict(**t.inputs))  # type: ignore[arg-type]
            out.append(abs(pred / true - 1.0) if math.isfinite(pred) else None)
        return out

    def curve(self, strategy: str, order: Sequence[int]) -> Curve:
        """Refit after each purchase of ``order`` and record cost and errors."""
        c = Curve(strategy)
        for k in range(1, len(order) + 1):
            c.bought.append(self.names[order[k - 1]])
            c.cost.append(float(self.cost[list(order[:k])].sum()))
            c.errors.append(self.errors(self.fit(order[:k])))
        return c

    def cheapest_first(self) -> list[int]:
        """Every run, cheapest first (ties in pool order)."""
        return [int(i) for i in np.argsort(self.cost, kind="stable")]

    def pilot(self) -> list[int]:
        """The cheapest-first prefix that ``check_design`` passes (the whole pool if none does)."""
        order = self.cheapest_first()
        for k in range(self.n_params, len(order) + 1):
            if not check_design(self.pool.iloc[order[:k]], self.law):
                return order[:k]
        return order

    def acquire_pick(self, kind: str, **options: Any) -> Callable[[list[int], list[int]], int]:
        """A pick by ``design.acquire``'s ``kind`` around the lsq engine's fit (module docstring)."""
        fast = self.fast
        assert fast is not None

        def pick(bought: list[int], left: list[int]) -> int:
            return fast.pick(kind, bought, left, self.cost, self.total, self.target_X, **options)

        return pick

    def picker(self, strategy: str) -> Callable[[list[int], list[int]], int]:
        """The next-run rule of ``adaptive``, ``variance`` or ``d-optimal`` for this replay's engine."""
        if self.fast is not None:
            kind, opts = {
                "adaptive": ("adaptive", {}),
                "variance": ("v-optimal", {"cost_exponent": 1.0}),
                "d-optimal": ("d-optimal", {}),
            }[strategy]
            return self.acquire_pick(kind, **opts)
        return {
            "adaptive": self.ensemble_pick,
            "variance": self.variance_pick,
            "d-optimal": self.d_optimal_pick,
        }[strategy]

    def adaptive_order(self, next_pick: Callable[[list[int], list[int]], int] | None = None) -> list[int]:
        """Pilot, then one run at a time by ``next_pick`` (default: ``adaptive``'s rule, ``picker``)."""
        bought = self.pilot()
        pick = next_pick or self.picker("adaptive")
        while len(bought) < len(self.pool):
            left = [i for i in range(len(self.pool)) if i not in bought]
            bought.append(pick(bought, left))
        return bought

    def _model(self, bought: list[int]) -> LinearModel | None:
        res = self.fit(bought)
        if res is None:
            return None
        y = observed_response(self.law, np.asarray(self.pool["loss"], dtype=float)[bought])
        return LinearModel(res, self.X[bought], y)

    def d_optimal_pick(self, bought: list[int], left: list[int]) -> int:
        """The baseline's next run: the largest gain in log det of the information per cost."""
        model = self._model(bought)
        if model is None:
            return min(left, key=lambda i: self.cost[i])
        return left[int(np.argmax(d_optimal(model, self.X[left], self.cost[left])))]

    def response(self, res: FitResult, X: np.ndarray) -> np.ndarray:
        """The fit's response (log L; log10 L for the OLS laws) at the rows of ``X`` (law inputs)."""
        with np.errstate(all="ignore"):
            pred = np.asarray(res.predict(**{n: X[:, j] for j, n in enumerate(self.inputs)}), dtype=float)
        return observed_response(self.law, pred)

    def ensemble_pick(self, bought: list[int], left: list[int]) -> int:
        """The next run by the expected reduction of the leave-one-out refits' spread at the targets per cost
        (``design.ensemble``); the linearised choice while too few refits succeed."""
        model = self._model(bought)
        if model is None:
            return min(left, key=lambda i: self.cost[i])
        TX = np.array([[t.inputs[k] for k in self.inputs] for t in self.targets])  # type: ignore[index]
        R = loo_predictions(self.fit, bought, self.response, np.vstack([TX, self.X[left]]))
        if len(R) < MIN_MEMBERS:
            return self.variance_pick(bought, left)
        t = len(TX)
        scored = ensemble_score(R[:, :t], R[:, t:], self.cost[left], model.sigma2)
        best = max(scored, key=lambda s: s.gain_per_cost)
        if not best.reduction > 0:
            return min(left, key=lambda i: self.cost[i])
        return left[best.index]

    def hindsight_order(self, tolerance: float) -> list[int]:
        """The pilot, then (cheapest first) the rest of the cheapest set from which an order of the remaining
        runs keeps every target within ``tolerance`` at every purchase, then that order.

        Dynamic programming over the sets that contain the pilot, from the full pool down: a set is *good*
        when its fit is within the tolerance and it is the pool or one more run makes a good set. When no
        set is good, the pool in cheapest-first order (its fraction is then None, as for every order)."""
        pilot = self.pilot()
        free = [i for i in range(len(self.pool)) if i not in pilot]
        if len(free) > HINDSIGHT_MAX_FREE:
            raise DesignError(
                f"hindsight needs 2^{len(free)} fits (pool of {len(self.pool)}, pilot of {len(pilot)}); "
                f"it is exhaustive and handles at most {HINDSIGHT_MAX_FREE} runs beyond the pilot"
            )

        def within(key: frozenset[int]) -> bool:
            e = self.errors(self.fit(sorted(key)))
            return all(v is not None and v <= tolerance for v in e)

        good: dict[frozenset[int], int | None] = {}  # good set -> the run that leads to a good superset
        full = frozenset(range(len(self.pool)))
        if within(full):
            good[full] = None
        for size in range(len(free) - 1, -1, -1):
            for extra in itertools.combinations(free, size):
                key = frozenset((*pilot, *extra))
                nxt = [i for i in free if i not in key and key | {i} in good]
                if nxt and within(key):
                    good[key] = min(nxt, key=lambda i: self.cost[i])
        if not good:
            return self.cheapest_first()
        start = min(good, key=lambda k: (float(self.cost[list(k)].sum()), len(k)))
        order = pilot + sorted(start - set(pilot), key=lambda i: self.cost[i])
        key = start
        while good[key] is not None:
            order.append(good[key])  # type: ignore[arg-type]
            key = key | {good[key]}
        return order

    def variance_pick(self, bought: list[int], left: list[int]) -> int:
        """The baseline's next run: the linearised law's expected target-variance reduction per cost."""
        model = self._model(bought)
        if model is None:  # no fit to linearise: the cheapest run is the safest next step
            return min(left, key=lambda i: self.cost[i])
        scored = score(model, self.targets, self.X[left], self.cost[left])
        best = max(scored, key=lambda s: s.gain_per_cost)
        if not best.reduction > 0:
            return min(left, key=lambda i: self.cost[i])
        return left[best.index]


def replay(
    pool: Any,
    targets: Any,
    law: str,
    *,
    tolerance: float = 0.03,
    seeds: int = 10,
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
    fit_kwargs: dict[str, Any] | None = None,
    engine: str = "auto",
) -> dict[str, Any]:
    """Every strategy's curve and compute fraction; random is reported per seed and as their mean."""
    rp = Replayer(pool, targets, law, fit_kwargs=fit_kwargs, engine=engine)
    n = len(rp.pool)
    curves: dict[str, Any] = {}
    for s in strategies:
        if s not in STRATEGIES:
            raise DesignError(f"unknown strategy {s!r}; choose from {', '.join(STRATEGIES)}")
        if s in ("adaptive", "variance", "d-optimal"):
            curves[s] = rp.curve(s, rp.adaptive_order(rp.picker(s))).to_dict(rp.total, tolerance)
        elif s == "hindsight":
            curves[s] = rp.curve(s, rp.hindsight_order(tolerance)).to_dict(rp.total, tolerance)
        elif s == "cheapest-first":
            curves[s] = rp.curve(s, rp.cheapest_first()).to_dict(rp.total, tolerance)
        elif s == "full":
            full = rp.curve(s, list(range(n)))
            curves[s] = Curve(s, ["all"], [rp.total], [full.errors[-1]]).to_dict(rp.total, tolerance)
        else:
            runs = [
                rp.curve(s, [int(i) for i in np.random.default_rng(seed).permutation(n)]).to_dict(
                    rp.total, tolerance
                )
                for seed in range(seeds)
            ]
            fr = [r["compute_fraction"] for r in runs]
            curves[s] = {
                "strategy": s,
                "seeds": seeds,
                "per_seed": runs,
                "compute_fraction": None if not fr or None in fr else float(np.mean(fr)),
                "compute_fraction_per_seed": fr,
            }
    return {
        "law": law,
        "engine": "lsq" if rp.fast is not None else "builtin",
        "tolerance": tolerance,
        "pool_runs": n,
        "pool_cost": rp.total,
        "targets": [
            {"inputs": t.inputs, "loss": float(v)} for t, v in zip(rp.targets, rp.truth, strict=True)
        ],
        "strategies": curves,
    }


def format_replay(result: dict[str, Any]) -> str:
    """The replay as text: compute fraction per strategy, then each ordered strategy's error curve."""
    tol = result["tolerance"]
    lines = [
        f"replay of {result['pool_runs']} runs (total cost {result['pool_cost']:.4g}), law "
        f"{result['law']}, tolerance {tol:.3g}",
        f"{'strategy':16s} compute_fraction",
    ]
    for s, c in result["strategies"].items():
        fr = c["compute_fraction"]
        extra = f"  (mean over {c['seeds']} seeds)" if s == "random" else ""
        lines.append(f"{s:16s} {'never' if fr is None else f'{fr:.3f}'}{extra}")
    for s in ("adaptive", "cheapest-first", "hindsight"):
        c = result["strategies"].get(s)
        if not c:
            continue
        lines.append(f"\n{s}: error at each target against compute spent")
        for st in c["steps"]:
            errs = " ".join("   -  " if e is None else f"{e:6.2%}" for e in st["errors"])
            lines.append(f"  {st['fraction']:7.3f}  {errs}  + {st['bought']}")
    return "\n".join(lines)
