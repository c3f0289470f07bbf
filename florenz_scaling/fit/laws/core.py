"""The ``Law`` type and the one registry of laws, looked up by name everywhere else.

A law knows its inputs (columns of a points table: N, D, C, U, …), its parameters (bounds, start grid, log or
linear scale, and the role the verdict judges an interval by), the space its residuals live in, how to
predict and its exact Jacobian, how it is fitted (OLS when it is linear in logs, else a multistart L-BFGS-B),
what a bootstrap resample refits from, what it derives (the compute-optimal allocation for laws of N and
D), and what a design needs to identify it. Fit, bootstrap, rollout, joint fits, verdicts, plots, the
report and the design stage ask the law; no module outside this package compares a law's name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RESPONSES = ("log", "raw", "log10")
SCALES = ("linear", "log")
ROLES = ("", "exponent", "scale", "intercept")


class LawError(ValueError):
    """A law that cannot be defined or used; the message names the law."""


@dataclass(frozen=True)
class Param:
    """One parameter: ``bounds`` and ``start`` values in natural units; ``scale="log"`` fits log(value)
    (bounds must be positive); ``role`` tells the verdict how to judge its interval (exponent: relative
    width; scale: decades; intercept and "": not judged)."""

    name: str
    bounds: tuple[float, float] = (-math.inf, math.inf)
    start: tuple[float, ...] = ()
    scale: str = "linear"
    role: str = ""

    def __post_init__(self) -> None:
        lo, hi = (float(b) for b in self.bounds)
        object.__setattr__(self, "bounds", (lo, hi))
        object.__setattr__(self, "start", tuple(float(s) for s in self.start))
        if self.scale not in SCALES:
            raise LawError(f"parameter {self.name}: scale must be one of {', '.join(SCALES)}")
        if self.role not in ROLES:
            raise LawError(f"parameter {self.name}: role must be one of {', '.join(r for r in ROLES if r)}")
        if not lo < hi:
            raise LawError(f"parameter {self.name}: bounds [{lo:g}, {hi:g}] are empty")
        if self.scale == "log" and lo <= 0:
            raise LawError(f"parameter {self.name}: a log-scale parameter needs a positive lower bound")
        bad = [s for s in self.start if not lo <= s <= hi]
        if bad:
            raise LawError(f"parameter {self.name}: start {bad[0]:g} is outside its bounds [{lo:g}, {hi:g}]")

    def to_work(self, v: Any) -> Any:
        return np.log(v) if self.scale == "log" else np.asarray(v, dtype=float)

    def from_work(self, w: Any) -> Any:
        return np.exp(w) if self.scale == "log" else np.asarray(w, dtype=float)


FitFn = Callable[[Any], Any]


@dataclass(frozen=True, eq=False)
class Law:
    """One scaling law. Subclasses implement ``predict``, ``jacobian`` and ``fit``; the rest has defaults.

    ``response``: the space of the residuals ("log" loss, "raw" loss, "log10" for the OLS laws).
    ``aliases``: other names ``predict`` accepts for inputs (the paper's P and S for N and D).
    ``shared``: the parameters a joint fit shares across groups unless told otherwise.
    ``levels`` / ``max_condition``: what ``plan --check`` asks of a design for this law.
    ``definition``: the YAML mapping a researcher wrote (None for the built-ins); stored with every fit so a
    fit file can be read without the law file.
    """

    name: str
    inputs: tuple[str, ...]
    params: tuple[Param, ...]
    response: str = "log"
    formula: str = ""
    linear_in_logs: bool = False
    aliases: Mapping[str, str] = field(default_factory=dict)
    shared: tuple[str, ...] = ()
    levels: int = 3
    max_condition: float = 1e3
    frontier: bool = False  # fitted on the Pareto frontier of (C, loss) only (paper Eq. 1)
    definition: Mapping[str, Any] | None = None
    source: str = "built-in"
    family = ""  # how the design stage linearises it: "ols", "lse" or "expr" (a class attribute)

    def __post_init__(self) -> None:
        if self.response not in RESPONSES:
            raise LawError(f"law {self.name!r}: response must be one of {', '.join(RESPONSES)}")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names) or set(names) & set(self.inputs):
            raise LawError(f"law {self.name!r}: parameter and input names must be distinct")
        unknown = [s for s in self.shared if s not in names]
        if unknown:
            raise LawError(f"law {self.name!r}: shared {', '.join(unknown)} are not its parameters")

    # ---- description ---------------------------------------------------------------------------------------
    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise LawError(f"law {self.name!r} has no parameter {name!r}; it has {', '.join(self.param_names)}")

    @property
    def n_params(self) -> int:
        return len(self.params)

    @property
    def has_allocation(self) -> bool:
        """Whether ``allocation`` gives the compute-optimal N*, D* (laws of N and D)."""
        return False

    @property
    def targets(self) -> tuple[str, ...]:
        """Named quantities a design may target besides the loss: the parameters and derived scalars."""
        return self.param_names

    # ---- inputs --------------------------------------------------------------------------------------------
    def named_inputs(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``inputs`` (keywords, aliases allowed) as arrays broadcast together, in ``self.inputs`` order."""
        got = {self.aliases.get(k, k): v for k, v in inputs.items()}
        missing = [k for k in self.inputs if k not in got]
        extra = [k for k in got if k not in self.inputs]
        if missing or extra or len(got) != len(inputs):
            raise TypeError(
                f"{self.name}.predict takes {', '.join(self.inputs)}; got {', '.join(sorted(inputs))}"
            )
        arrays = np.broadcast_arrays(*[np.asarray(got[k], dtype=float) for k in self.inputs])
        return dict(zip(self.inputs, arrays, strict=True))

    def columns(self, table: Any) -> dict[str, np.ndarray]:
        """The law's inputs from a points table; a missing column is refused by name."""
        missing = [k for k in self.inputs if k not in table.columns]
        if missing:
            raise LawError(
                f"law {self.name!r} needs input column(s) {', '.join(missing)}; the table has "
                f"{', '.join(map(str, table.columns))}"
            )
        return {k: np.asarray(table[k], dtype=float) for k in self.inputs}

    # ---- the model -----------------------------------------------------------------------------------------
    def predict(self, params: Mapping[str, float], **inputs: Any) -> np.ndarray:
        """Predicted loss at the inputs."""
        raise NotImplementedError

    def jacobian(self, params: Mapping[str, float], **inputs: Any) -> np.ndarray:
        """∂L̂/∂θ (n, p) in natural parameters, in ``params`` order: exact, never finite differences."""
        raise NotImplementedError

    def to_response(self, loss: Any) -> np.ndarray:
        """A loss in the response space (log, log10 or raw)."""
        loss = np.asarray(loss, dtype=float)
        return {"log": np.log, "log10": np.log10, "raw": np.asarray}[self.response](loss)

    def from_response(self, r: Any) -> np.ndarray:
        r = np.asarray(r, dtype=float)
        return {"log": np.exp, "log10": lambda x: 10.0**x, "raw": np.asarray}[self.response](r)

    # ---- fitting -------------------------------------------------------------------------------------------
    def fit(self, table: Any, **kwargs: Any) -> Any:
        """The law fitted to a points table (``FitResult``)."""
        raise NotImplementedError

    def fitter(self, **kwargs: Any) -> FitFn:
        """``table -> FitResult`` with fixed options."""

        def fn(t: Any) -> Any:
            return self.fit(t, **kwargs)

        fn.law = self.name  # type: ignore[attr-defined]
        return fn

    def full_fitter(self) -> FitFn:
        """The fitter a bootstrap uses for the full data when it is only given the law's name."""
        return self.fitter()

    def resample_fitter(self, point: Any, **kwargs: Any) -> FitFn:
        """The per-resample fit of a bootstrap around the full-data fit ``point``."""
        return self.fitter(**kwargs)

    def batch_refitter(self, point: Any) -> Callable[[Any, np.ndarray], tuple[dict[str, Any], int]] | None:
        """All bootstrap resamples refitted at once, each as weights over the rows of one table (how often
        its run was drawn): ``(table, W (B, n)) -> ({parameter: (B,) values}, resamples polished alone)``.
        None: the law refits resample by resample (``resample_fitter``)."""
        return None

    def fit_options(self, method: str, objective: str) -> dict[str, Any]:
        """The options of ``fit`` that a command's --method / --objective set for this law."""
        return {}

    def refit_options(self, result: Any, objective: str) -> dict[str, Any]:
        """Options that refit the same way as ``result`` (for the rollout check)."""
        return {}

    def replay_options(self) -> dict[str, Any]:
        """Options for the many refits of a replay or a design's leave-one-out ensemble."""
        return {}

    # ---- what a fit gives ----------------------------------------------------------------------------------
    def derived(self, result: Any, budgets: Sequence[float] | None) -> dict[str, float]:
        """Derived quantities of one fit (bootstrapped alongside the parameters): for a law of compute alone,
        the loss at each budget."""
        if self.inputs != ("C",):
            return {}
        return {f"L@{c:.6g}": float(self.predict(result.params, C=c)) for c in budgets or ()}

    def derived_scalars(self, params: Mapping[str, float]) -> dict[str, float]:
        """Named scalars a design may target, beyond the parameters (e.g. chinchilla's ratio)."""
        return {}

    def allocation(self, params: Mapping[str, float], C: Any) -> dict[str, Any]:
        raise LawError(f"law {self.name!r} has no compute-optimal allocation")

    def bands(self, result: Any, interval: str, level: float, x: dict[str, np.ndarray]) -> Any:
        raise ValueError(f"{self.name}: intervals come from the bootstrap (see ci), not predict()")

    def nominal(self, X: np.ndarray) -> dict[str, float]:
        """Unit-free stand-in parameters a design is checked at before any fit: each parameter's middle start
        value (or the middle of its bounds)."""
        out = {}
        for p in self.params:
            if p.start:
                out[p.name] = float(sorted(p.start)[len(p.start) // 2])
            else:
                lo, hi = (float(p.to_work(b)) if math.isfinite(b) else b for b in p.bounds)
                mid = 0.5 * (lo + hi) if math.isfinite(lo) and math.isfinite(hi) else 0.0
                out[p.name] = float(p.from_work(mid))
        return out

    def condition(self, params: Mapping[str, float], inputs: Sequence[Any]) -> float | None:
        """Condition number of the column-scaled Jacobian of the response in working parameters
        (``fit.verdict``)."""
        x = dict(zip(self.inputs, inputs, strict=True))
        with np.errstate(all="ignore"):
            J = self.jacobian(params, **x)
            pred = self.predict(params, **x)
        if self.response != "raw":
            J = J / pred[:, None]
        for j, p in enumerate(self.params):
            if p.scale == "log":
                J[:, j] *= params[p.name]
        norms = np.linalg.norm(J, axis=0)
        if np.any(norms == 0) or not np.all(np.isfinite(J)):
            return math.inf
        return float(np.linalg.cond(J / norms))


# ---- the registry ------------------------------------------------------------------------------------------
_REGISTRY: dict[str, Law] = {}
_BUILTIN: list[str] = []


def register(law: Law, *, builtin: bool = False, replace: bool = False) -> Law:
    """Add ``law`` to the registry; a different law under a taken name is refused unless ``replace``."""
    old = _REGISTRY.get(law.name)
    if old is not None and not replace and old.definition != law.definition:
        raise LawError(f"law {law.name!r} is already defined ({old.source}); choose another name")
    if old is not None and old.source == "built-in" and not builtin:
        raise LawError(f"law {law.name!r} is a built-in law; choose another name")
    _REGISTRY[law.name] = law
    if builtin and law.name not in _BUILTIN:
        _BUILTIN.append(law.name)
    return law


_DEFINE: list[Callable[[str, Any, str], Law]] = []  # set by fit.laws.user: builds a law from its YAML


def set_definition_loader(fn: Callable[[str, Any, str], Law]) -> None:
    """How ``ensure_law`` builds a law from the definition a fit file carries (``fit.laws.user``)."""
    _DEFINE[:] = [fn]


def ensure_law(name: str, extras: Mapping[str, Any] | None = None) -> Law:
    """The law called ``name``; a fit of a law a researcher wrote carries its definition in
    ``extras["law_definition"]``, which registers it when this process has not loaded its file."""
    definition = ((extras or {}).get("law_definition") or {}).get(name)
    if name not in _REGISTRY and definition is not None and _DEFINE:
        register(_DEFINE[0](name, definition, "fit file"))
    return get_law(name)


def get_law(name: str) -> Law:
    """The registered law called ``name``."""
    law = _REGISTRY.get(str(name))
    if law is None:
        raise LawError(
            f"unknown law {name!r}; known laws: {', '.join(_REGISTRY)} (or define one with --laws)"
        )
    return law


def is_law(name: Any) -> bool:
    return isinstance(name, str) and name in _REGISTRY


def law_names() -> tuple[str, ...]:
    """Every registered law, built-ins first."""
    return tuple(_REGISTRY)


def builtin_names() -> tuple[str, ...]:
    return tuple(_BUILTIN)


def unregister(name: str) -> None:
    """Remove a law a researcher defined (built-ins stay)."""
    if name in _BUILTIN:
        raise LawError(f"law {name!r} is built in")
    _REGISTRY.pop(name, None)
