"""The built-in laws: the paper's Eq. 1 and Eq. 3 (OLS in log10 space), Chinchilla and saturating compute
(the log-sum-exp recipe), and the formula laws chinchilla-tied, data-constrained and farseer.

The OLS and log-sum-exp laws keep their own fitters (``fit.laws.ols``, ``fit.chinchilla``), whose numbers
the tests pin; the formula laws are ``ExprLaw`` objects like the ones a researcher writes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from florenz_scaling.fit.laws.core import Law, Param, register
from florenz_scaling.fit.laws.exprlaw import ExprLaw

LN10 = math.log(10.0)
# The paper's two laws by name, for the modules that draw the paper's own figures (Fig. 3: Eq. 1; Eq. 3) and
# open the report with its compute exponent: data, so that nothing outside the registry spells a law's name.
PAPER_EQ1, PAPER_EQ3 = "compute", "size-data"
NOMINAL_EXPONENT = 0.3  # the unit-free stand-in a design check linearises a law at (``design.check``)


@dataclass(frozen=True, eq=False)
class OLSLaw(Law):
    """log10 L = c0 + Σ c_j·log10 x_j, fitted by OLS (``fit_arrays``: the fitter taking arrays, then L)."""

    fit_arrays: Callable[..., Any] | None = None
    family = "ols"

    def predict(self, params: Mapping[str, float], **inputs: Any) -> np.ndarray:
        return 10.0 ** self._mean_log(params, self.named_inputs(inputs))[0]

    def _mean_log(
        self, params: Mapping[str, float], x: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        design = np.stack([np.ones_like(next(iter(x.values()))), *[np.log10(v) for v in x.values()]], axis=-1)
        coef = np.array([params[k] for k in self.param_names])
        return design @ coef, design

    def jacobian(self, params: Mapping[str, float], **inputs: Any) -> np.ndarray:
        mean_log, design = self._mean_log(params, self.named_inputs(inputs))
        return (10.0**mean_log * LN10)[..., None] * design

    def fit(self, table: Any, **kwargs: Any) -> Any:
        X = self.columns(table)
        allowed = {"level", *(("frontier_only",) if self.frontier else ())}
        kw = {k: v for k, v in kwargs.items() if k in allowed}
        return self.fit_arrays(*X.values(), np.asarray(table["loss"], dtype=float), **kw)  # type: ignore[misc]

    def bands(self, result: Any, interval: str, level: float, x: dict[str, np.ndarray]) -> Any:
        """(mean, low, high): Student-t confidence or prediction band in log10 space, as statsmodels gives."""
        from scipy import stats

        mean_log, design = self._mean_log(result.params, x)
        if interval not in ("confidence", "prediction"):
            raise ValueError("interval must be None, 'confidence' or 'prediction'")
        if result.covariance is None or not result.dof or result.dof <= 0:
            raise ValueError("no residual degrees of freedom: intervals are undefined for this fit")
        cov = np.asarray(result.covariance, dtype=float)
        var = np.einsum("...i,ij,...j->...", design, cov, design)
        if interval == "prediction":
            var = var + float(result.residual_variance or 0.0)
        half = stats.t.ppf(0.5 + level / 2.0, result.dof) * np.sqrt(var)
        return 10.0**mean_log, 10.0 ** (mean_log - half), 10.0 ** (mean_log + half)

    def nominal(self, X: np.ndarray) -> dict[str, float]:
        return {k: (1.0 if i == 0 else -NOMINAL_EXPONENT) for i, k in enumerate(self.param_names)}


@dataclass(frozen=True, eq=False)
class LSELaw(Law):
    """L = E + Σ_j A_j·x_j^(−α_j), fitted by the log-sum-exp recipe (``fit.chinchilla``)."""

    coefs: tuple[str, ...] = ()
    exponents: tuple[str, ...] = ()
    fit_arrays: Callable[..., Any] | None = None
    auto_full: bool = False  # a bootstrap given only the name fits the full data with method="auto"
    family = "lse"

    @property
    def has_allocation(self) -> bool:
        return set(self.inputs) == {"N", "D"}

    def _terms(self, params: Mapping[str, float], x: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [
            params[a] / v ** params[e] for a, e, v in zip(self.coefs, self.exponents, x.values(), strict=True)
        ]

    def predict(self, params: Mapping[str, float], **inputs: Any) -> np.ndarray:
        return params["E"] + sum(self._terms(params, self.named_inputs(inputs)))

    def jacobian(self, params: Mapping[str, float], **inputs: Any) -> np.ndarray:
        x = self.named_inputs(inputs)
        cols = {"E": np.ones_like(next(iter(x.values())))}
        for a, e, v, t in zip(self.coefs, self.exponents, x.values(), self._terms(params, x), strict=True):
            cols[a] = t / params[a] if params[a] != 0 else v ** -params[e]
            cols[e] = -t * np.log(v)
        return np.stack([cols[k] for k in self.param_names], axis=-1)

    def fit(self, table: Any, **kwargs: Any) -> Any:
        X = self.columns(table)
        return self.fit_arrays(*X.values(), np.asarray(table["loss"], dtype=float), **kwargs)  # type: ignore[misc]

    def full_fitter(self) -> Any:
        return self.fitter(method="auto") if self.auto_full else self.fitter()

    def fit_options(self, method: str, objective: str | None) -> dict[str, Any]:
        return {"method": method, "objective": objective or "huber-log"}

    def refit_options(self, result: Any, objective: str | None) -> dict[str, Any]:
        return {"method": result.method, "objective": objective or "huber-log"}

    def replay_options(self) -> dict[str, Any]:
        return {"method": "auto"}

    def resample_fitter(self, point: Any, *, n_warm: int = 4, **kwargs: Any) -> Any:
        """Warm starts from the full fit's best local optima (see ``fit.bootstrap.resample_fitter``)."""
        # Resamples are fitted with the full fit's objective, or the intervals would describe another fit.
        kwargs = {"objective": point.solver.get("objective", "huber-log"), **kwargs}
        if point.method == "lbfgs":
            optima = point.solver.get("local_optima") or [{"theta": list(point.solver["theta"].values())}]
            grid = np.array([o["theta"] for o in optima[:n_warm]], dtype=float)
            return self.fitter(method="lbfgs", init_grid=grid, screen=False, **kwargs)
        if point.method == "varpro":
            # A coarse exponent grid plus the full-data exponents as an extra candidate, then Nelder-Mead.
            init = [point.params[e] for e in self.exponents]
            return self.fitter(method="varpro", varpro_grid=10, varpro_init=init, **kwargs)
        return self.fitter(**kwargs)

    def batch_refitter(self, point: Any, *, n_warm: int = 4) -> Any:
        """Every resample at once, by a batched exact Newton from the same warm starts as
        ``resample_fitter`` (``fit._newton``: the same optima, tested); only for the L-BFGS recipe."""
        if point.method != "lbfgs":
            return None
        from florenz_scaling.fit._newton import lse_resample_fits

        optima = point.solver.get("local_optima") or [{"theta": list(point.solver["theta"].values())}]
        starts = [np.asarray(o["theta"], dtype=float) for o in optima[:n_warm]]
        objective = point.solver.get("objective", "huber-log")
        m = len(self.coefs)

        def refit(table: Any, W: np.ndarray) -> tuple[dict[str, Any], int]:
            loss = np.asarray(table["loss"], dtype=float)
            theta, n_alone = lse_resample_fits(
                starts, list(self.columns(table).values()), loss, W, objective=objective
            )
            out = {a: np.exp(theta[:, j]) for j, a in enumerate(self.coefs)}
            out.update({e: theta[:, m + 1 + j] for j, e in enumerate(self.exponents)})
            out["E"] = np.exp(theta[:, m])
            return out, n_alone

        return refit

    def derived(self, result: Any, budgets: Sequence[float] | None) -> dict[str, float]:
        if not self.has_allocation:
            return super().derived(result, budgets)
        out: dict[str, float] = {}
        p = result.params
        s = p["alpha"] + p["beta"]
        out["beta_over_alpha_plus_beta"] = p["beta"] / s if s > 0 else float("nan")
        for c in budgets or ():
            with np.errstate(all="ignore"):
                co = self.allocation(p, c) if p["alpha"] > 0 and p["beta"] > 0 else None
            for k in ("N_opt", "D_opt", "L_opt"):
                out[f"{k}@{c:.6g}"] = float(co[k]) if co is not None else float("nan")
        return out

    def derived_scalars(self, params: Mapping[str, float]) -> dict[str, float]:
        if not self.has_allocation:
            return {}
        return {"ratio": params["beta"] / (params["alpha"] + params["beta"])}

    @property
    def targets(self) -> tuple[str, ...]:
        return (*self.param_names, *(("ratio",) if self.has_allocation else ()))

    def allocation(self, params: Mapping[str, float], C: Any) -> dict[str, Any]:
        from florenz_scaling.fit.chinchilla import compute_optimal

        if not self.has_allocation:
            return super().allocation(params, C)
        return compute_optimal(dict(params), C)

    def condition(self, params: Mapping[str, float], inputs: Sequence[Any]) -> float | None:
        p = params
        xs = [np.asarray(x, dtype=float) for x in inputs]
        terms = [p[c] * x ** -p[e] for c, e, x in zip(self.coefs, self.exponents, xs, strict=True)]
        total = p["E"] + sum(terms)
        # d log L̂ / d(log A, log E, α) with log x centred: the exponent is then identified apart from its
        # coefficient, as in the paper's centred OLS.
        cols = [t / total for t in terms] + [np.full_like(total, p["E"]) / total]
        cols += [-(t / total) * (np.log(x) - np.log(x).mean()) for t, x in zip(terms, xs, strict=True)]
        J = np.column_stack(cols)
        norms = np.linalg.norm(J, axis=0)
        if np.any(norms == 0) or not np.all(np.isfinite(J)):
            return math.inf
        return float(np.linalg.cond(J / norms))

    def nominal(self, X: np.ndarray) -> dict[str, float]:
        centre = np.log(np.asarray(X, dtype=float)).mean(axis=0)
        out = {"E": 1.0}
        for a, e, c0 in zip(self.coefs, self.exponents, centre, strict=True):
            out.update({e: NOMINAL_EXPONENT, a: math.exp(NOMINAL_EXPONENT * c0)})
        return out


def _builtins() -> list[Law]:
    from florenz_scaling.fit.chinchilla import fit_chinchilla, fit_saturating_compute
    from florenz_scaling.fit.laws.ols import fit_compute, fit_size_data

    free = (-math.inf, math.inf)
    return [
        OLSLaw(
            "compute",
            ("C",),
            (Param("alpha0", free, role="intercept"), Param("alpha1", free, role="exponent")),
            response="log10",
            formula="log10 L = alpha0 + alpha1·log10 C (paper Eq. 1, Pareto frontier)",
            linear_in_logs=True,
            shared=("alpha1",),
            levels=2,
            max_condition=10.0,
            frontier=True,
            fit_arrays=fit_compute,
        ),
        OLSLaw(
            "size-data",
            ("N", "D"),
            (
                Param("beta0", free, role="intercept"),
                Param("beta1", free, role="exponent"),
                Param("beta2", free, role="exponent"),
            ),
            response="log10",
            formula="log10 L = beta0 + beta1·log10 P + beta2·log10 S (paper Eq. 3; P = N, S = D)",
            linear_in_logs=True,
            aliases={"P": "N", "S": "D"},
            shared=("beta1", "beta2"),
            levels=2,
            max_condition=10.0,
            fit_arrays=fit_size_data,
        ),
        LSELaw(
            "chinchilla",
            ("N", "D"),
            tuple(
                Param(n, (0.0, math.inf), role=r)
                for n, r in (
                    ("E", "scale"),
                    ("A", "scale"),
                    ("B", "scale"),
                    ("alpha", "exponent"),
                    ("beta", "exponent"),
                )
            ),
            formula="L = E + A/N^alpha + B/D^beta",
            shared=("alpha", "beta"),
            coefs=("A", "B"),
            exponents=("alpha", "beta"),
            fit_arrays=fit_chinchilla,
            auto_full=True,
        ),
        LSELaw(
            "saturating-compute",
            ("C",),
            tuple(
                Param(n, (0.0, math.inf), role=r)
                for n, r in (("E", "scale"), ("A", "scale"), ("alpha", "exponent"))
            ),
            formula="L = E + A·C^(-alpha)",
            shared=("alpha",),
            coefs=("A",),
            exponents=("alpha",),
            fit_arrays=fit_saturating_compute,
        ),
        ExprLaw(
            "chinchilla-tied",
            ("N", "D"),
            (
                Param("E", (0.0, 10.0), (0.5, 1.5, 2.5), role="scale"),
                Param("A", (1e-3, 1e6), (100.0, 1000.0), "log", "scale"),
                Param("B", (1e-3, 1e6), (100.0, 1000.0), "log", "scale"),
                Param("alpha", (0.01, 2.0), (0.1, 0.3, 0.5), role="exponent"),
            ),
            expr="E + A * N**(-alpha) + B * D**(-alpha)",
            shared=("alpha",),
            e_at_most_min_loss=("E",),
        ),
        ExprLaw(
            "data-constrained",
            ("N", "D", "U"),
            (
                Param("A", (1e-2, 1e9), (1e2, 1e4, 1e6), "log", "scale"),
                Param("tau_N", (0.1, 1e3), (5.0, 50.0), "log"),
                Param("B", (1e-2, 1e9), (1e2, 1e4, 1e6), "log", "scale"),
                Param("tau_D", (0.1, 1e3), (5.0, 50.0), "log"),
                Param("alpha", (0.05, 1.5), (0.2, 0.35, 0.5), role="exponent"),
                Param("E", (0.0, 10.0), (0.5, 1.5, 2.5), role="scale"),
                Param("rho", (1e-4, 1e2), (1e-2, 1.0), "log"),
            ),
            expr=(
                "A / (min(rho*U, N) + tau_N*min(rho*U, N)"
                "*(1 - exp(-max(N/min(rho*U, N) - 1, 0)/tau_N)))**alpha"
                " + B / (U + tau_D*U*(1 - exp(-(D/U - 1)/tau_D)))**alpha + E"
            ),
            formula=(
                "L = A/N'^alpha + B/D'^alpha + E; N' = U_N + tau_N·U_N·(1 − exp(−R_N/tau_N)), "
                "D' = U + tau_D·U·(1 − exp(−R_D/tau_D)), U_N = min(rho·U, N), R_N = max(N/U_N − 1, 0), "
                "R_D = D/U − 1 (Muennighoff et al. 2023)"
            ),
            response="raw",
            shared=("alpha",),
            random_starts=64,
        ),
        ExprLaw(
            "farseer",
            ("N", "D"),
            (
                Param("E", (1.0, 6.0), (2.0, 3.5)),
                Param("s", (-1.0, 0.3), (-0.5, -0.05)),
                Param("q", (0.01, 0.5), (0.05, 0.15)),
                Param("S", (-1.0, 1.0), (-0.5, 0.2)),
                Param("B", (10.0, 1000.0), (30.0, 300.0), "log"),
                Param("b", (-0.6, -0.01), (-0.3, -0.1)),
                Param("Q", (-5.0, 1.0), (-3.0, -1.0)),
                Param("A", (-5.0, 1.0), (-2.0, -0.5)),
                Param("a", (0.001, 0.25), (0.01, 0.1)),
            ),
            expr="exp(s*N**q + S) + exp(B*N**b + Q) * D**(-exp(A*N**a + E))",
            response="raw",
            random_starts=64,
        ),
    ]


for _law in _builtins():
    register(_law, builtin=True)
