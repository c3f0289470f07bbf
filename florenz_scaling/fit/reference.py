"""Published coefficients to compare a sweep's fits against: the Florenz paper's Tables 2–3.

The file is ``paper_coefficients.json``: ``{"laws": {law: {"groups": {group: {"params": {...},
"ci": {name: [lo, hi]}, "pvalues": {name: "p<0.001"}}}}}}``, with the parameter names a ``FitResult`` uses.
A sweep's own ``fits/paper_coefficients.json`` wins over the package's copy (package data, found through
``importlib.resources`` so that an installed wheel has it too; the repository's ``fits/`` links to it).
"""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np

from florenz_scaling.files import SweepDir

PAPER_FILE = "paper_coefficients.json"


def paper_candidates(sweep_dir: str | Path | None = None) -> list[Path | Traversable]:
    """Where the paper's Tables 2–3 may be, first found wins: the sweep's fits/, then the package's data."""
    found: list[Path | Traversable] = [SweepDir(sweep_dir).fits / PAPER_FILE] if sweep_dir is not None else []
    return [*found, files("florenz_scaling.fit") / PAPER_FILE]


def load_paper(sweep_dir: str | Path | None = None, path: str | Path | None = None) -> dict[str, Any] | None:
    """The paper's coefficients (JSON), or None when no copy is found: figures and the report then leave the
    comparison out."""
    candidates = [Path(path)] if path is not None else paper_candidates(sweep_dir)
    for p in candidates:
        if p.is_file():
            return json.loads(p.read_text(encoding="utf-8"))
    return None


def paper_coefficients(paper: dict[str, Any] | None, law: str, group: str) -> dict[str, tuple] | None:
    """The paper's coefficients of ``law`` for ``group`` as {name: (value, lo, hi, p-value note)}, or None.

    ``paper`` is what ``load_paper`` returns; a missing interval is (nan, nan), a missing note "".
    """
    if not paper:
        return None
    entry = (((paper.get("laws") or {}).get(law) or {}).get("groups") or {}).get(group)
    if not isinstance(entry, dict) or not entry.get("params"):
        return None
    ci, pv = entry.get("ci") or {}, entry.get("pvalues") or {}
    return {
        name: (float(v), *(float(x) for x in ci.get(name, (np.nan, np.nan))), str(pv.get(name, "")))
        for name, v in entry["params"].items()
    }


def paper_predict(coef: dict[str, tuple], law: str, **inputs: Any) -> np.ndarray:
    """The paper's law (Eq. 1 or Eq. 3, log10 space) evaluated at the inputs, as a loss."""
    from florenz_scaling.fit.laws import get_law

    found = get_law(law)
    missing = [k for k in found.param_names if k not in coef]
    if missing:
        raise ValueError(f"the paper has no coefficients for law {law!r}")
    return found.predict({k: coef[k][0] for k in found.param_names}, **inputs)
