"""A fitted law, linearised: the Fisher information of a design and the variance of a target.

Why the Fisher information (delta method) and not bootstrap refits. Ranking a candidate needs the variance
of the target *after* adding a run that has not been measured. In the linearised model
y_i = f(x_i; θ) + ε_i (ε ~ N(0, σ²), y = log loss) the posterior covariance does not depend on the value that
will be observed, so the expected covariance after adding a point x is exact under the linearisation and a
rank-1 update: Σ' = Σ − Σj jᵀΣ / (σ² + jᵀΣj), j = ∂f/∂θ at x. That is closed form, costs O(p²) per candidate,
and stays exact when a batch is chosen greedily. A bootstrap would need an invented loss at every candidate
and a refit per candidate and resample (thousands of non-linear fits per decision), and with the few runs of
an early round it is noisy exactly where the decision matters. The tests check the delta-method variance
against brute-force Monte Carlo refits.

Scale: σ² is the fit's residual variance in the response space (log L for the non-linear laws, log10 L for
the OLS laws), floored at ``SIGMA_FLOOR``; with no residual degrees of freedom ``SIGMA_DEFAULT`` is assumed.
A weak Gaussian prior (``PRIOR_SD`` on the working parameters) keeps the information invertible while a
design cannot yet identify the law; it is negligible once it can. The variance is that of a least-squares
(Gaussian) estimator; the Huber fit (δ = 1e-3, L1-like for noise above 0.1%) is up to π/2 times noisier,
which scales every candidate alike and so leaves the ranking unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from florenz_scaling.fit import FitResult, get_law, is_law, law_names

SIGMA_FLOOR = 1e-3  # 0.1 % in log loss: below the seed-to-seed noise of any real run
SIGMA_DEFAULT = 1e-2  # 1 % when the fit has no residual degrees of freedom to estimate it from
# Prior sd per working parameter: log-coefficients (centred, so O(1)), exponents, OLS coefficients.
PRIOR_SD = {"coef": 3.0, "exponent": 1.0, "ols": 1e3}
# Other names a target may use for the inputs: P/S and N/D are the same axes (parameters, data).
INPUT_ALIASES = {"P": "N", "S": "D"}


class DesignError(ValueError):
    """A law, target or pool the design stage cannot handle; the message says which and what to do."""


def law_inputs(law: str) -> tuple[str, ...]:
    """The inputs a law predicts from, as columns of a points table (N, D, C, U, …)."""
    if not is_law(law):
        raise DesignError(f"unknown law {law!r}; the design stage handles {', '.join(law_names())}")
    return get_law(law).inputs


@dataclass(frozen=True)
class Target:
    """What the design should pin down: the loss at ``inputs`` (N/D or C) or a parameter (``param``)."""

    law: str
    inputs: dict[str, float] | None = None
    param: str | None = None

    @property
    def label(self) -> str:
        """A short name for tables and JSON."""
        if self.param:
            return self.param
        return "L(" + ",".join(f"{k}={v:.4g}" for k, v in (self.inputs or {}).items()) + ")"


def parse_target(text: str, law: str) -> Target:
    """``"P=1e9,S=1e8"`` / ``"N=…,D=…"`` / ``"C=…"`` (the loss there) or a parameter name such as ``alpha``
    (``ratio`` = β/(α+β) for chinchilla); raises ``DesignError`` naming what the law accepts."""
    need = law_inputs(law)
    text = text.strip()
    params = get_law(law).targets
    accepts = (
        f"law {law} accepts a target loss at "
        + ",".join(f"{k}=…" for k in need)
        + (" (P/S for N/D)" if {"N", "D"} <= set(need) else "")
        + f" or a parameter: {', '.join(params)}"
    )
    if "=" not in text:
        name = text.removeprefix("exponent:")
        if name not in params:
            raise DesignError(f"target {text!r}: not a parameter of {law}; {accepts}")
        return Target(law, param=name)
    got: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, val = part.partition("=")
        key = INPUT_ALIASES.get(key.strip(), key.strip()) if {"N", "D"} <= set(need) else key.strip()
        if key not in need or key in got:
            raise DesignError(f"target {text!r}: {part!r} does not fit; {accepts}")
        try:
            got[key] = float(val)
        except ValueError:
            raise DesignError(f"target {text!r}: {val!r} is not a number") from None
        if not (math.isfinite(got[key]) and got[key] > 0):
            raise DesignError(f"target {text!r}: {key} must be positive")
    if set(got) != set(need):
        raise DesignError(f"target {text!r} lacks {', '.join(sorted(set(need) - set(got)))}; {accepts}")
    return Target(law, inputs=got)


class LinearModel:
    """One law around one fit: working parameters θ, the Jacobian of the response, σ² and the prior.

    Log-sum-exp laws use the parameters of their fitter (a = log A, e = log E), with the coefficients
    centred at the design's mean log input so that θ's columns are well scaled:
    log L = LSE(a' − α·(log N − c_N), b' − β·(log D − c_D), e). The OLS laws are linear in log10 space.
    Formula laws use their own working parameters (log of a log-scale parameter) and the law's exact
    Jacobian of log L.
    """

    def __init__(self, fit: FitResult, X: np.ndarray, y: np.ndarray) -> None:
        self.law = fit.law
        self.found = get_law(self.law)
        self.inputs = law_inputs(self.law)
        X = np.asarray(X, dtype=float).reshape(len(y), len(self.inputs))
        self.family = self.found.family
        self.linear = self.family == "ols"
        p = fit.params
        self.centre = np.zeros(X.shape[1])
        if self.linear:
            self.theta = np.array([p[k] for k in self.found.param_names], dtype=float)
            self.prior = np.full(len(self.theta), PRIOR_SD["ols"])
        elif self.family == "lse":
            self.centre = np.log(X).mean(axis=0)
            coefs, exps = self.found.coefs, self.found.exponents
            tiny = 1e-300  # NNLS can return a coefficient of exactly 0: its term then carries no weight
            a = [
                math.log(max(p[c], tiny)) - p[e] * c0
                for c, e, c0 in zip(coefs, exps, self.centre, strict=True)
            ]
            self.theta = np.array([*a, math.log(max(p["E"], tiny)), *(p[e] for e in exps)], dtype=float)
            m = len(coefs)
            self.prior = np.array([PRIOR_SD["coef"]] * (m + 1) + [PRIOR_SD["exponent"]] * m)
        else:
            self.theta = np.array([float(q.to_work(p[q.name])) for q in self.found.params])
            self.prior = np.array(
                [
                    PRIOR_SD["coef"] if q.scale == "log" else PRIOR_SD["exponent"] * max(1.0, abs(p[q.name]))
                    for q in self.found.params
                ]
            )
        resid = y - self.response(X)
        dof = len(y) - len(self.theta)
        s2 = float(resid @ resid) / dof if dof > 0 else SIGMA_DEFAULT**2
        self.sigma2 = max(s2, SIGMA_FLOOR**2)
        J = self.jacobian(X)
        self.information = J.T @ J / self.sigma2 + np.diag(1.0 / self.prior**2)
        self.n_points = len(y)

    # ---- the response and its derivatives -----------------------------------------------------------------
    def _features(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        return np.log10(X) if self.linear else np.log(X) - self.centre

    def _terms(self, theta: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """The LSE exponents (n, m+1): a'_j − α_j z_j for each input j, then e."""
        m = Z.shape[1]
        cols = [theta[j] - theta[m + 1 + j] * Z[:, j] for j in range(m)]
        return np.column_stack([*cols, np.full(len(Z), theta[m])])

    def _named(self, X: np.ndarray) -> dict[str, np.ndarray]:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        return {k: X[:, j] for j, k in enumerate(self.inputs)}

    def response(self, X: np.ndarray, theta: np.ndarray | None = None) -> np.ndarray:
        """Predicted response (log10 L for OLS laws, log L otherwise) at inputs ``X`` (n, inputs)."""
        th = self.theta if theta is None else theta
        if self.family == "expr":
            with np.errstate(all="ignore"):
                return np.log(self.found.predict(self.params_at(th), **self._named(X)))
        Z = self._features(X)
        if self.linear:
            return th[0] + Z @ th[1:]
        u = self._terms(th, Z)
        top = u.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(u - top).sum(axis=1, keepdims=True))).ravel()

    def jacobian(self, X: np.ndarray) -> np.ndarray:
        """∂response/∂θ at inputs ``X``: (n, p), analytic."""
        if self.family == "expr":
            p = self.params_at(self.theta)
            x = self._named(X)
            with np.errstate(all="ignore"):
                J = self.found.jacobian(p, **x) / self.found.predict(p, **x)[:, None]
            scale = [p[q.name] if q.scale == "log" else 1.0 for q in self.found.params]
            return J * np.array(scale)
        Z = self._features(X)
        if self.linear:
            return np.column_stack([np.ones(len(Z)), Z])
        m = Z.shape[1]
        u = self._terms(self.theta, Z)
        w = np.exp(u - u.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)  # softmax: each term's share of the loss
        J = np.zeros((len(Z), 2 * m + 1))
        for j in range(m):
            J[:, j] = w[:, j]
            J[:, m + 1 + j] = -w[:, j] * Z[:, j]
        J[:, m] = w[:, m]
        return J

    def to_loss(self, r: np.ndarray) -> np.ndarray:
        """Loss from the response."""
        return 10.0**r if self.linear else np.exp(r)

    # ---- targets -------------------------------------------------------------------------------------------
    def params_at(self, theta: np.ndarray) -> dict[str, float]:
        """The law's public parameters (and its derived scalars, e.g. chinchilla's ratio) at working θ."""
        names = self.found.param_names
        if self.linear:
            return dict(zip(names, theta.tolist(), strict=True))
        if self.family == "expr":
            out = {q.name: float(q.from_work(t)) for q, t in zip(self.found.params, theta, strict=True)}
            return {**out, **self.found.derived_scalars(out)}
        m = len(self.centre)
        coefs, exps = self.found.coefs, self.found.exponents
        out = {"E": math.exp(theta[m])}
        for j in range(m):
            out[exps[j]] = float(theta[m + 1 + j])
            out[coefs[j]] = math.exp(theta[j] + theta[m + 1 + j] * self.centre[j])
        return {**out, **self.found.derived_scalars(out)}

    def target_value(self, target: Target, theta: np.ndarray | None = None) -> float:
        """The target quantity at θ (default: the fit)."""
        th = self.theta if theta is None else theta
        if target.param:
            return self.params_at(th)[target.param]
        x = np.array([[target.inputs[k] for k in self.inputs]])  # type: ignore[index]
        return float(self.to_loss(self.response(x, th))[0])

    def target_gradient(self, target: Target) -> np.ndarray:
        """∂target/∂θ: analytic for losses, central differences for parameters (cheap: p ≤ 5)."""
        if target.inputs is not None:
            x = np.array([[target.inputs[k] for k in self.inputs]])
            scale = math.log(10.0) if self.linear else 1.0
            return self.target_value(target) * scale * self.jacobian(x)[0]
        g = np.zeros(len(self.theta))
        for i in range(len(self.theta)):
            h = 1e-6 * max(1.0, abs(self.theta[i]))
            up, dn = self.theta.copy(), self.theta.copy()
            up[i] += h
            dn[i] -= h
            g[i] = (self.target_value(target, up) - self.target_value(target, dn)) / (2 * h)
        return g

    def covariance(self) -> np.ndarray:
        """Σ = (JᵀJ/σ² + prior precision)⁻¹ of the working parameters."""
        return np.linalg.inv(self.information)


def linearise(fit: FitResult, points: Any) -> LinearModel:
    """The fit's ``LinearModel`` on the points it was fitted to (the rows ``fit.used`` marks, where given)."""
    X = np.column_stack([np.asarray(points[k], dtype=float) for k in law_inputs(fit.law)])
    L = np.asarray(points["loss"], dtype=float)
    if fit.used and len(fit.used) == len(L):
        keep = np.asarray(fit.used, dtype=bool)
        X, L = X[keep], L[keep]
    return LinearModel(fit, X, observed_response(fit.law, L))


def observed_response(law: str, L: Any) -> np.ndarray:
    """Measured losses in the space the design linearises a law in: log10 L for OLS laws, log L otherwise."""
    L = np.asarray(L, dtype=float)
    return np.log10(L) if get_law(law).linear_in_logs else np.log(L)
