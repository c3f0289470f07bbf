"""A law given by an expression (``fit.laws.expr``): prediction, exact symbolic Jacobian, multistart fit.

Built-ins that are plain formulas (``chinchilla-tied``, ``data-constrained``, ``farseer``) and every law a
researcher writes in YAML are ``ExprLaw`` objects, so both are fitted, bootstrapped, joint-fitted and used by
the design stage by the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from florenz_scaling.fit.laws import expr as ex
from florenz_scaling.fit.laws.core import Law, LawError
from florenz_scaling.fit.laws.generic import N_WARM, fit_batch, start_grid

# Compute-optimal search: N between these tokens-per-parameter extremes along C = 6·N·D.
ALLOC_RATIO = (1e-3, 1e5)
ALLOC_NOTE = "compute-optimal N*, D* minimise the law along C = 6·N·D (numerically, in log N)"


@dataclass(frozen=True, eq=False)
class ExprLaw(Law):
    """A law from the expression ``expr`` of its inputs and parameters."""

    expr: str = ""
    random_starts: int = 0
    e_at_most_min_loss: tuple[str, ...] = ()  # parameters bounded above by the smallest loss (like E)
    family = "expr"

    def __post_init__(self) -> None:
        super().__post_init__()
        tree = ex.parse(self.expr, (*self.inputs, *self.param_names), self.name)
        unused = [p for p in self.param_names if p not in ex.names_in(tree)]
        if unused:
            raise LawError(
                f"law {self.name!r}: parameter(s) {', '.join(unused)} do not appear in {self.expr!r}"
            )
        object.__setattr__(self, "_tree", tree)
        object.__setattr__(self, "_dtrees", tuple(ex.diff(tree, p, {}) for p in self.param_names))
        if not self.formula:
            object.__setattr__(self, "formula", f"L = {self.expr}")

    @property
    def has_allocation(self) -> bool:
        return set(self.inputs) == {"N", "D"}

    # ---- the model -----------------------------------------------------------------------------------------
    def batch(
        self, nat: np.ndarray, X: Mapping[str, np.ndarray], jacobian: bool = True
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Prediction (K, n) and ∂/∂θ columns at K natural parameter rows (K, p) and inputs (1, n) arrays."""
        env: dict[str, Any] = dict(X)
        for j, name in enumerate(self.param_names):
            env[name] = nat[:, j : j + 1]
        memo: dict[int, Any] = {}
        shape = np.broadcast_shapes(nat[:, :1].shape, *(v.shape for v in X.values()))
        pred = np.broadcast_to(ex.evaluate(self._tree, env, memo), shape)
        if not jacobian:
            return pred, []
        J = [np.broadcast_to(ex.evaluate(d, env, memo), shape) for d in self._dtrees]
        return pred, J

    def _env(self, params: Mapping[str, float], inputs: Mapping[str, Any]) -> tuple[np.ndarray, dict, tuple]:
        x = self.named_inputs(inputs)
        shape = next(iter(x.values())).shape
        nat = np.array([[float(params[p]) for p in self.param_names]])
        return nat, {k: v.reshape(1, -1) for k, v in x.items()}, shape

    def predict(self, params: Mapping[str, float], **inputs: Any) -> np.ndarray:
        nat, X, shape = self._env(params, inputs)
        with np.errstate(all="ignore"):
            pred = self.batch(nat, X, jacobian=False)[0][0]
        return pred.reshape(shape)

    def jacobian(self, params: Mapping[str, float], **inputs: Any) -> np.ndarray:
        nat, X, _ = self._env(params, inputs)
        with np.errstate(all="ignore"):
            _, J = self.batch(nat, X)
        return np.column_stack([j[0] for j in J])

    # ---- fitting -------------------------------------------------------------------------------------------
    def default_objective(self) -> str:
        return "mse-raw" if self.response == "raw" else "huber-log"

    def start_grid(self) -> np.ndarray:
        return start_grid(self, random_starts=self.random_starts)

    def fit(
        self,
        table: Any,
        *,
        objective: str | None = None,
        delta: float = 1e-3,
        starts: np.ndarray | None = None,
        screen: bool = True,
        n_polish: int = 8,
        **_ignored: Any,
    ) -> Any:
        from florenz_scaling.fit.result import FitResult

        X = self.columns(table)
        L = np.asarray(table["loss"], dtype=float)
        objective = objective or self.default_objective()
        if len(L) < self.n_params:
            raise ValueError(f"{len(L)} points cannot determine {self.n_params} coefficients")
        if not np.all(np.isfinite(L)) or (objective == "huber-log" and np.any(L <= 0)):
            raise ValueError("losses must be finite (and positive for log residuals)")
        for k, v in X.items():
            if not np.all(np.isfinite(v)):
                raise ValueError(f"input {k} must be finite")
        law = self._capped(float(L.min()))
        out, problem, lo, hi = fit_batch(
            law, X, L, objective=objective, delta=delta, starts=starts, screen=screen, n_polish=n_polish
        )
        res = out["res"]
        theta = np.clip(res.x, lo, hi)
        nat = problem.natural(theta[None, :])[0]
        params = dict(zip(self.param_names, nat.tolist(), strict=True))
        tol = 1e-6 * np.where(np.isfinite(hi - lo), np.maximum(hi - lo, 1.0), 1.0)
        at_bound = {
            n: ("lower" if t <= a + tol_ else "upper" if t >= b - tol_ else None)
            for n, t, a, b, tol_ in zip(self.param_names, theta, lo, hi, tol, strict=True)
        }
        warnings = [f"{k} at its {v} bound" for k, v in at_bound.items() if v]
        if len(L) < 4 * self.n_params:
            warnings.append(f"only {len(L)} points for {self.n_params} parameters")
        # Converged means the bound-constrained optimality (KKT) conditions hold: the gradient of a parameter
        # held at a bound and pushing outwards does not count (L-BFGS-B often ends such a fit with an
        # "ABNORMAL" line search, e.g. data-constrained's tau_N at its lower bound); the bound is a warning.
        held = ((theta <= lo + tol) & (res.jac > 0)) | ((theta >= hi - tol) & (res.jac < 0))
        projected = float(np.abs(np.where(held, 0.0, res.jac)).max())
        ok = res.status == 0 or projected < 1e-6 * max(1.0, abs(res.fun))
        solver = {
            "objective": objective,
            "objective_kind": (
                f"Huber(delta={delta}) of log residuals"
                if objective == "huber-log"
                else "squared error of the raw loss"
            )
            + ", sum over points",
            "optimizer": "batched L-BFGS screen, then scipy L-BFGS-B (exact Jacobian of the law)",
            "optimizer_message": str(res.message),
            "optimizer_status": int(res.status),
            "n_starts": out["n_starts"],
            "n_polished": out["n_polished"],
            "local_optima": out["local_optima"],
            "theta": dict(zip(self.param_names, theta.tolist(), strict=True)),
            "grad_inf_norm": float(np.abs(res.jac).max()),
            "projected_grad_inf_norm": projected,
        }
        extras: dict[str, Any] = {"formula": self.formula}
        if self.definition is not None:
            extras["law_definition"] = {self.name: dict(self.definition)}
        return FitResult(
            law=self.name,
            params=params,
            objective=float(res.fun),
            status="converged" if ok else f"not converged: {res.message}",
            n_points=len(L),
            used=[True] * len(L),
            method="lbfgs",
            nit=out["nit"],
            at_bound=at_bound,
            warnings=warnings,
            solver=solver,
            extras=extras,
        )

    def _capped(self, min_loss: float) -> ExprLaw:
        """The law with the parameters of ``e_at_most_min_loss`` bounded above by the smallest loss."""
        if not self.e_at_most_min_loss:
            return self
        import dataclasses

        params = tuple(
            dataclasses.replace(p, bounds=(p.bounds[0], min(p.bounds[1], min_loss)), start=())
            if p.name in self.e_at_most_min_loss and p.bounds[1] > min_loss
            else p
            for p in self.params
        )
        # the caps change bounds only; starts above the cap are clipped by the optimiser
        capped = dataclasses.replace(self, params=params, e_at_most_min_loss=())
        return capped

    def fit_options(self, method: str, objective: str | None) -> dict[str, Any]:
        return {"objective": objective} if objective else {}

    def refit_options(self, result: Any, objective: str | None) -> dict[str, Any]:
        return {"objective": result.solver.get("objective") or objective}

    def resample_fitter(self, point: Any, *, n_warm: int = N_WARM, **kwargs: Any) -> Any:
        optima = point.solver.get("local_optima") or [{"theta": list(point.solver["theta"].values())}]
        grid = np.array([o["theta"] for o in optima[:n_warm]], dtype=float)
        kw = {"objective": point.solver.get("objective"), "starts": grid, "screen": False, **kwargs}
        return self.fitter(**kw)

    # ---- what a fit gives ----------------------------------------------------------------------------------
    def derived(self, result: Any, budgets: Sequence[float] | None) -> dict[str, float]:
        out = super().derived(result, budgets)
        if self.has_allocation:
            for c in budgets or ():
                a = self.allocation(result.params, c)
                for k in ("N_opt", "D_opt", "L_opt"):
                    out[f"{k}@{c:.6g}"] = float(a[k])
        return out

    def allocation(self, params: Mapping[str, float], C: Any) -> dict[str, Any]:
        """Compute-optimal N*, D* = C/(6N*), L* at training FLOPs ``C``, by a grid and a bounded refinement
        in log N (the law need not have a closed form)."""
        if not self.has_allocation:
            return super().allocation(params, C)
        from scipy.optimize import minimize_scalar

        Cs = np.atleast_1d(np.asarray(C, dtype=float))
        n_opt = np.empty_like(Cs)
        for i, c in enumerate(Cs):
            lo, hi = (0.5 * np.log(c / 6.0 / r) for r in (ALLOC_RATIO[1], ALLOC_RATIO[0]))
            grid = np.linspace(lo, hi, 200)

            def loss(logn: Any, c: float = c) -> Any:
                n = np.exp(logn)
                with np.errstate(all="ignore"):
                    v = self.predict(params, N=n, D=c / (6.0 * n))
                return np.where(np.isfinite(v), v, np.inf)

            k = int(np.argmin(loss(grid)))
            a, b = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
            r = minimize_scalar(
                lambda x: float(loss(x)), bounds=(a, b), method="bounded", options={"xatol": 1e-9}
            )
            n_opt[i] = np.exp(r.x)
        d_opt = Cs / (6.0 * n_opt)
        l_opt = self.predict(params, N=n_opt, D=d_opt)
        shape = np.shape(C)
        return {
            "N_opt": n_opt.reshape(shape),
            "D_opt": d_opt.reshape(shape),
            "L_opt": l_opt.reshape(shape),
            "tokens_per_param": (d_opt / n_opt).reshape(shape),
            "convention": ALLOC_NOTE,
        }
