"""Bootstrap refits of a log-sum-exp law, every resample at once: one batched projected Newton problem.

A resample of runs is the full data with integer weights (each row counted as often as its run was drawn),
so B resamples are B weight vectors over the same points. The objective of ``_optim.LSEProblem`` (Huber of
the log residuals, or the squared raw error, summed) is evaluated for all of them in one numpy pass, with
its exact gradient and exact Hessian: p = 2m + 1 ≤ 5 parameters, so a Newton step is a batch of 5×5
eigen-solves. Each resample starts at a local optimum of the full data (a resample's optimum lies in one
of the valleys the full data has, as for the per-resample polish this replaces) and Newton, unlike L-BFGS,
does not crawl along this law's flat valleys: a few steps reach the floor. A resample stops when no step
along its (projected, damped) Newton direction lowers its objective any more — the floor
``_optim.polish(deep=True)`` runs to — or when its projected gradient vanishes. The tests compare the
intervals with those of the per-resample polish on Epoch's data and on simulated data.
"""

from __future__ import annotations

import numpy as np

HUBER, RAW = "huber-log", "mse-raw"


def lse_parts(
    theta: np.ndarray,
    X: np.ndarray,
    logL: np.ndarray,
    W: np.ndarray,
    *,
    delta: float,
    objective: str,
    value_only: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Objective (K,), gradient (K, p) and Hessian (K, p, p) of rows ``theta`` (K, p) with weights W (K, n).

    θ = (a_1…a_m, e, α_1…α_m), term t: z = a_j − α_j·x_j or e; q = log Σ exp z (huber-log) or Σ exp z
    (mse-raw); f = Σ_i w_i·h(q_i − y_i). With c_t = ∂q/∂z_t (softmax weights, or exp z for the raw loss) and
    u_t = ∂z_t/∂θ: ∇q = Σ c_t u_t and ∇²q = Σ c_t u_t u_tᵀ − [log only] ∇q ∇qᵀ, so
    ∇²f = Σ w (h'' − [log] h') ∇q ∇qᵀ + Σ w h' Σ_t c_t u_t u_tᵀ. ``value_only``: f alone (line searches).
    """
    K, m = theta.shape[0], X.shape[1]
    p = 2 * m + 1
    with np.errstate(all="ignore"):
        planes = [np.exp(theta[:, j, None] - theta[:, m + 1 + j, None] * X[None, :, j]) for j in range(m)]
        planes.append(np.broadcast_to(np.exp(theta[:, m, None]), planes[0].shape))
        s = sum(planes[1:], planes[0].copy())
        if objective == RAW:
            r = s - np.exp(logL)
            h, h1, h2 = r * r, 2.0 * r, np.full_like(r, 2.0)
            coef = planes
        else:
            r = np.log(s) - logL
            ar = np.abs(r)
            h = np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta))
            h1, h2 = np.clip(r, -delta, delta), (ar <= delta).astype(float)
            coef = [P / s for P in planes]
        f = np.einsum("kn,kn->k", W, h)
        if value_only:
            f[~np.isfinite(f)] = np.inf
            return f, None, None
        G = np.empty((K, X.shape[0], p))
        for j in range(m):
            G[:, :, j] = coef[j]
            G[:, :, m + 1 + j] = -coef[j] * X[None, :, j]
        G[:, :, m] = coef[m]
        wh1 = W * h1
        Gt = G.transpose(0, 2, 1)  # batched matrix products: far faster than a three-operand einsum
        g = np.matmul(Gt, wh1[:, :, None])[:, :, 0]
        outer = W * (h2 - h1) if objective != RAW else W * h2
        H = np.matmul(Gt * outer[:, None, :], G)
        for j in range(m):
            v = wh1 * coef[j]
            vx = v * X[None, :, j]
            a, al = j, m + 1 + j
            H[:, a, a] += v.sum(axis=1)
            H[:, a, al] -= vx.sum(axis=1)
            H[:, al, a] -= vx.sum(axis=1)
            H[:, al, al] += (vx * X[None, :, j]).sum(axis=1)
        H[:, m, m] += (wh1 * coef[m]).sum(axis=1)
    bad = ~np.isfinite(f) | ~np.isfinite(g).all(axis=1) | ~np.isfinite(H).all(axis=(1, 2))
    f[bad], g[bad], H[bad] = np.inf, 0.0, 0.0
    return f, g, H


def newton_refit(
    x0: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    X: np.ndarray,
    logL: np.ndarray,
    W: np.ndarray,
    *,
    delta: float = 1e-3,
    objective: str = HUBER,
    maxiter: int = 100,
    max_ls: int = 30,
    gtol: float = 1e-12,
    ftol: float = 1e-13,
    floor_gtol: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projected, damped Newton from ``x0`` (K, p) for every row at once, within per-row bounds (K, p).

    Variables at a bound with the gradient pushing outwards are held there (projected Newton); the
    Hessian's eigenvalues are replaced by their magnitudes plus a per-row Levenberg–Marquardt damping, so
    every direction descends; a backtracking Armijo search on the projected path takes the step. A row stops
    when its projected gradient vanishes (``gtol``, relative to f) or after 4 steps in a row that gain less
    than ``ftol`` (relative) — its floor, as ``_optim.polish(deep=True)``'s. Returns (x, f, stopped):
    ``stopped`` is False for a row still moving after ``maxiter`` steps or at a floor whose gradient is
    above ``floor_gtol`` (relative): the caller polishes those on their own.
    """
    x_out = np.clip(np.array(x0, dtype=float), lo, hi)
    K, p = x_out.shape
    f_out = np.full(K, np.inf)
    stopped = np.zeros(K, dtype=bool)
    live = np.arange(K)
    x = x_out.copy()
    f, g, H = lse_parts(x, X, logL, W, delta=delta, objective=objective)
    # Levenberg–Marquardt damping per row: near-L1 Huber objectives have almost flat Hessian directions,
    # where an undamped Newton step overshoots by orders of magnitude; mu shrinks after full steps.
    mu = 1e-8 * np.abs(np.diagonal(H, axis1=1, axis2=2)).max(axis=1) + 1e-300
    stall = np.zeros(K, dtype=int)
    for _ in range(maxiter):
        lo_, hi_ = lo[live], hi[live]
        held = ((x <= lo_) & (g > 0)) | ((x >= hi_) & (g < 0))
        free = ~held
        gp = np.where(free, g, 0.0)
        Hf = H * (free[:, :, None] & free[:, None, :]) + np.eye(p) * held[:, :, None]
        lam, V = np.linalg.eigh(Hf)
        lam = np.abs(lam) + mu[:, None]
        d = -np.einsum("kpq,kq->kp", V, np.einsum("kqp,kq->kp", V, gp) / lam)
        d[held] = 0.0
        t = np.ones(len(live))
        xn, fn = x.copy(), f.copy()
        ok = np.zeros(len(live), dtype=bool)
        flat = np.abs(gp).max(axis=1) <= gtol * np.abs(f)
        todo = np.flatnonzero(np.isfinite(f) & ~flat)
        for _ls in range(max_ls):
            if todo.size == 0:
                break
            cand = np.clip(x[todo] + t[todo, None] * d[todo], lo_[todo], hi_[todo])
            fc = lse_parts(cand, X, logL, W[live[todo]], delta=delta, objective=objective, value_only=True)[0]
            dec = np.einsum("kp,kp->k", g[todo], cand - x[todo])
            acc = (fc <= f[todo] + 1e-4 * dec) & (fc < f[todo])
            at = todo[acc]
            xn[at], fn[at] = cand[acc], fc[acc]
            ok[at] = True
            todo = todo[~acc]
            t[todo] *= 0.5
        mu = np.where(ok & (t == 1.0), mu * 0.1, np.where(ok, mu * 2.0, mu * 100.0))
        # Kinks of the Huber loss can keep a row alternating between failed and negligible steps: 4 steps
        # in a row that gain less than ftol (relative), or nothing at all, are its floor.
        stall = np.where(ok & (f - fn > ftol * np.abs(f)), 0, stall + 1)
        x, f = xn, fn
        if ok.any():
            moved = np.flatnonzero(ok)
            _, g[moved], H[moved] = lse_parts(
                x[moved], X, logL, W[live[moved]], delta=delta, objective=objective
            )
        # Done: the gradient vanished (converged), or no step lowers the objective however damped (the
        # floor; ``stopped`` says so only when the gradient there is small, else the caller polishes it).
        stop = flat | (stall >= 4)
        if stop.any():
            x_out[live[stop]], f_out[live[stop]] = x[stop], f[stop]
            stopped[live[stop]] = flat[stop] | (np.abs(gp[stop]).max(axis=1) <= floor_gtol * np.abs(f[stop]))
            keep = ~stop
            live, x, f, g, H = live[keep], x[keep], f[keep], g[keep], H[keep]
            mu, stall = mu[keep], stall[keep]
        if live.size == 0:
            break
    x_out[live], f_out[live] = x, f
    return x_out, f_out, stopped


def lse_resample_fits(
    optima: list[np.ndarray],
    inputs: list[np.ndarray],
    L: np.ndarray,
    W: np.ndarray,
    *,
    objective: str,
    delta: float = 1e-3,
    floor_gtol: float = 1e-4,
) -> tuple[np.ndarray, int]:
    """Working parameters (B, p) of the log-sum-exp law refitted with each row of weights ``W`` (B, n).

    Every resample starts from each of the full fit's ``optima`` (working vectors) and keeps its best, as the
    per-resample polish does; bounds are ``chinchilla.lse_bounds`` with E below the resample's own lowest
    loss. A resample Newton leaves still improving is polished alone by scipy's L-BFGS-B to its floor.
    Returns the parameters and how many resamples needed that polish.
    """
    from florenz_scaling.fit._optim import LSEProblem, polish
    from florenz_scaling.fit.chinchilla import lse_bounds

    X = np.column_stack([np.log(a) for a in inputs])
    logL = np.log(L)
    B, k = len(W), len(optima)
    lo, hi = lse_bounds(X.shape[1], float(L.min()))
    his = np.tile(hi, (B, 1))
    his[:, X.shape[1]] = [logL[w > 0].min() for w in W]
    los = np.tile(lo, (B, 1))
    x0 = np.repeat(np.asarray(optima, dtype=float), B, axis=0)  # start-major: rows j*B .. j*B+B-1
    x, f, stopped = newton_refit(
        x0,
        np.tile(los, (k, 1)),
        np.tile(his, (k, 1)),
        X,
        logL,
        np.tile(W, (k, 1)),
        delta=delta,
        objective=objective,
        floor_gtol=floor_gtol,
    )
    # A start still moving but already 1 % above another start's finished optimum of the same resample
    # (typically a degenerate valley, E -> 0) is not polished: small steps will not make it the best.
    done_f = np.where(stopped, f, np.inf).reshape(k, B).min(axis=0)
    alone = [i for i in np.flatnonzero(~stopped) if not f[i] > (1 + 1e-2) * done_f[i % B]]
    for i in alone:
        b = i % B
        problem = LSEProblem(X, logL, delta=delta, weights=W[b], objective=objective)
        res = polish(problem, x[i], lo, his[b], deep=True)
        x[i], f[i] = res.x, res.fun
    best = np.argmin(f.reshape(k, B), axis=0)
    return x.reshape(k, B, -1)[best, np.arange(B)], len(alone)
