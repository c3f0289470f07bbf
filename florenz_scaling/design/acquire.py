"""Which run to buy next, scored from a fit's distinct optima: the criterion of ``replay``'s ``adaptive``,
``propose`` and ``run --adaptive``, and the V-optimal and D-optimal baselines.

All in the raw loss (what the target-region R² scores), around a least-squares fit (``design.lsq``):

- Noise σ²: a Bayesian estimate from the fit's residuals, (b0 + SSR/2) / (a0 + n/2 − 1) with a0 = ``A0``
  and b0 = a0 · Var(observed losses): with few runs it stays near the losses' spread instead of collapsing
  to the near-zero residual of an over-parameterised fit. It stays well above the residual noise (on
  farseer ~20–300x SSR/(n − p)), which the criteria need: ranked by the residual σ² itself, ours fell to
  0.92 at 10 % of the pool. a0 = 1 (from 2): the prior fades faster as runs are bought (farseer, 10
  repeats, ours 0.70 / 0.89 / 0.935 at 1 / 5 / 10 % against 0.69 / 0.88 / 0.927; variants in
  ``benchmarks/scalebench.py``).
- Fisher covariance Σ = (JᵀJ/σ² + P)⁻¹ in working parameters, P a weak prior (sd a quarter of each bound's
  width) so that Σ exists before the design identifies the law.
- V-optimal gain of a candidate c: Σ_t (j_tᵀ Σ j_c)² / (σ² + j_cᵀ Σ j_c), the expected drop of the summed
  predictive variance over the target rows t.
- Mode gain: the near-optimal fits (SSR within ``MODE_CHI2`` σ² of the best, weighted by exp(−ΔSSR/2σ²))
  disagree at the targets where the data do not yet decide between them. Their weighted covariance C of
  predictions at targets and candidates gives, by the same Gaussian update, the expected drop of that
  disagreement from measuring c: Σ_t C(t, c)² / (C(c, c) + σ²). The Fisher term alone sees only the
  curvature of one basin; this one sees the spread between basins (what the leave-one-out ensemble began to
  see, at no extra fits: the optima come from the refit's own multistart).
- ``adaptive``: (V-optimal gain + mode gain) / (cost / pool cost)^γ, γ = ``COST_EXPONENT``. The exponent
  below 1 because the expensive runs near the target region are the informative ones: dividing by raw cost
  (γ = 1) buys a swarm of tiny runs that never pin the large-N behaviour.
- D-optimal: log(1 + j_cᵀ Σ j_c / σ²) / cost, target-agnostic (the paper's baseline).
"""

from __future__ import annotations

import numpy as np

from florenz_scaling.design.lsq import Fits, LawFitter

COST_EXPONENT = 0.4  # adaptive's cost exponent (variants measured: see README "Choosing runs")
VOPT_COST_EXPONENT = 0.3  # the V-optimal baseline's, as published
MODE_CHI2 = 4.0  # optima with SSR within this many σ² of the best count as competing modes
MAX_MODES = 8
A0 = 1.0  # the noise prior's a0 (module docstring); also sets b0 = a0 · Var(losses)


def noise_variance(fits: Fits, y_obs: np.ndarray) -> float:
    """The Bayesian σ² of the raw loss (module docstring)."""
    n = max(len(y_obs), 1)
    b0 = A0 * float(np.var(y_obs)) if len(y_obs) > 1 else 1e-4
    rss = fits.rss if fits.rss is not None else fits.ssr
    ssr = float(rss[0]) if np.isfinite(rss[0]) else b0
    return max((b0 + ssr / 2.0) / (A0 + n / 2.0 - 1.0), 1e-12)


def fisher_covariance(fitter: LawFitter, theta: np.ndarray, idx: np.ndarray, sigma2: float) -> np.ndarray:
    """Σ = (JᵀJ/σ² + P)⁻¹ at ``theta`` for the pool rows ``idx`` (eigenvalues floored: never singular)."""
    prior_sd = np.maximum((fitter.box_hi - fitter.box_lo) / 4.0, 1e-6)
    J = fitter.jacobian(theta, fitter.subset(idx)) if len(idx) else np.zeros((0, fitter.p))
    H = J.T @ J / sigma2 + np.diag(1.0 / prior_sd**2)
    w, V = np.linalg.eigh((H + H.T) / 2.0)
    w = np.maximum(w, max(1e-10 * w[-1], 1e-30))
    return (V / w) @ V.T


def vopt_gain(Jc: np.ndarray, Jt: np.ndarray, S: np.ndarray, sigma2: float) -> np.ndarray:
    """Expected drop of the summed target predictive variance from each candidate row of ``Jc``."""
    SJc = Jc @ S
    lever = np.einsum("cp,cp->c", SJc, Jc)
    cross = Jt @ SJc.T  # (t, c)
    return (cross**2).sum(axis=0) / (sigma2 + lever)


def dopt_gain(Jc: np.ndarray, S: np.ndarray, sigma2: float) -> np.ndarray:
    """Gain in log det of the information from each candidate."""
    lever = np.einsum("cp,pq,cq->c", Jc, S, Jc)
    return np.log1p(np.maximum(lever, 0.0) / sigma2)


def modes(fits: Fits, sigma2: float) -> tuple[np.ndarray, np.ndarray]:
    """The competing near-optimal fits (working θ) and their normalised weights."""
    rss = fits.rss if fits.rss is not None else fits.ssr  # raw-loss SSR: the Gaussian likelihood σ² is of
    d = rss - np.min(rss)
    ok = np.flatnonzero(np.isfinite(d) & (d <= MODE_CHI2 * sigma2))[:MAX_MODES]
    w = np.exp(-d[ok] / (2.0 * sigma2))
    return fits.theta[ok], w / w.sum()


def mode_gain(Pt: np.ndarray, Pc: np.ndarray, w: np.ndarray, sigma2: float) -> np.ndarray:
    """Expected drop of the modes' weighted disagreement at the targets from measuring each candidate:
    ``Pt`` (modes, targets), ``Pc`` (modes, candidates) predictions, ``w`` the modes' weights."""
    if len(w) < 2:
        return np.zeros(Pc.shape[1])
    Dt = Pt - w @ Pt
    Dc = Pc - w @ Pc
    cross = np.einsum("m,mt,mc->tc", w, Dt, Dc)
    var_c = np.einsum("m,mc,mc->c", w, Dc, Dc)
    return (cross**2).sum(axis=0) / (var_c + sigma2)


def gains(
    kind: str,
    fitter: LawFitter,
    fits: Fits,
    bought: np.ndarray,
    cand: np.ndarray,
    targets: dict[str, np.ndarray],
    *,
    use_modes: bool = True,
    sigma2: float | None = None,
) -> np.ndarray:
    """Each candidate's gain before its cost is counted: for ``adaptive`` and ``v-optimal`` the expected
    drop of the target region's summed predictive variance (raw loss²), for ``d-optimal`` of log det.
    ``sigma2``: the noise variance (default: the Bayesian ``noise_variance`` the criterion ranks by)."""
    sigma2 = noise_variance(fits, fitter.y[bought]) if sigma2 is None else sigma2
    theta = fits.best
    S = fisher_covariance(fitter, theta, bought, sigma2)
    Xc = fitter.subset(cand)
    Jc = fitter.jacobian(theta, Xc)
    if kind == "d-optimal":
        return dopt_gain(Jc, S, sigma2)
    if kind not in ("v-optimal", "adaptive"):
        raise ValueError(f"unknown criterion {kind!r}")
    gain = vopt_gain(Jc, fitter.jacobian(theta, targets), S, sigma2)
    if kind == "adaptive" and use_modes:
        th, w = modes(fits, sigma2)
        if len(w) > 1:
            Pt, Pc = fitter.predict(th, targets), fitter.predict(th, Xc)
            finite = np.all(np.isfinite(Pt), axis=1) & np.all(np.isfinite(Pc), axis=1)
            if finite.sum() > 1:
                gain = gain + mode_gain(Pt[finite], Pc[finite], w[finite] / w[finite].sum(), sigma2)
    return gain


def target_variance(
    fitter: LawFitter,
    fits: Fits,
    bought: np.ndarray,
    targets: dict[str, np.ndarray],
    *,
    use_modes: bool = True,
    sigma2: float | None = None,
) -> float:
    """The target region's summed predictive variance now, the quantity ``adaptive``'s gain is a drop of:
    the Fisher (delta-method) variance plus the competing modes' weighted disagreement (``sigma2`` as in
    ``gains``)."""
    sigma2 = noise_variance(fits, fitter.y[bought]) if sigma2 is None else sigma2
    S = fisher_covariance(fitter, fits.best, bought, sigma2)
    Jt = fitter.jacobian(fits.best, targets)
    var = float(np.einsum("tp,pq,tq->", Jt, S, Jt))
    if use_modes:
        th, w = modes(fits, sigma2)
        if len(w) > 1:
            Pt = fitter.predict(th, targets)
            ok = np.all(np.isfinite(Pt), axis=1)
            if ok.sum() > 1:
                w = w[ok] / w[ok].sum()
                var += float(np.einsum("m,mt->", w, (Pt[ok] - w @ Pt[ok]) ** 2))
    return var


def score(
    kind: str,
    fitter: LawFitter,
    fits: Fits,
    bought: np.ndarray,
    cand: np.ndarray,
    cand_cost: np.ndarray,
    total_cost: float,
    targets: dict[str, np.ndarray],
    *,
    cost_exponent: float | None = None,
    use_modes: bool = True,
) -> np.ndarray:
    """Each candidate's score (higher is better) for ``kind`` in ``adaptive``, ``v-optimal``,
    ``d-optimal``: its ``gains`` per (cost / ``total_cost``)^γ; ``bought`` and ``cand`` are pool rows,
    ``targets`` the target region's inputs. Only the ranking matters: ``total_cost`` scales every score
    alike."""
    gain = gains(kind, fitter, fits, bought, cand, targets, use_modes=use_modes)
    rel = np.maximum(np.asarray(cand_cost, dtype=float) / total_cost, 1e-300)
    default = {"d-optimal": 1.0, "v-optimal": VOPT_COST_EXPONENT, "adaptive": COST_EXPONENT}[kind]
    return gain / rel ** (default if cost_exponent is None else cost_exponent)
