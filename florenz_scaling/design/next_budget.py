"""The next budget of a compute-budget sweep: K sizes around the predicted N_opt(C), as a sweep YAML.

N_opt(C) comes from the sweep's IsoFLOP analysis (DIR/fits/isoflop/, written by ``fit --isoflop`` or
``run``; made here when missing): approach 2's power law, else approach 3's. The sizes are the size
registry's of the sweep's own family (the tiny ladder or the paper's), the K whose parameter counts lie
nearest N_opt in log P, chosen so that N_opt falls between the smallest and the largest of them whenever the
registry has a size on each side. The sweep file is the finished sweep's resolved spec with only its name,
sizes and budget changed (one budget, no tokens-per-parameter window, so every chosen size gets its run):
``plan`` and ``launch`` take it unchanged, and the planner gives each size the seen samples that spend C.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from florenz_scaling.files import SweepDir, write_atomic
from florenz_scaling.fit import load_isoflop
from florenz_scaling.spec import load_sweep, to_plain
from florenz_scaling.spec.sizes import SIZES, get_size


@dataclass(frozen=True)
class NextBudget:
    """What ``plan --next-budget`` decided: the predicted optimum, the sizes, and where it came from."""

    C: float
    N_opt: float
    approach: str
    group: str | None
    sizes: tuple[str, ...]
    params: tuple[int, ...]
    bracketed: bool
    note: str
    path: Path


def predict_n_opt(sweep_dir: str | Path, C: float) -> tuple[float, str, str | None]:
    """N_opt at budget C (the sweep's compute units) from its IsoFLOP analysis: (N_opt, approach, group)."""
    analyses = load_isoflop(sweep_dir)
    if not analyses:
        from florenz_scaling.fit import write_isoflop
        from florenz_scaling.plan import read_plan

        budget_of = {
            r["run_id"]: float(r["budget_gmacs"]) for r in read_plan(sweep_dir) if r.get("budget_gmacs")
        }
        write_isoflop(sweep_dir, budget_of, n_boot=200)
        analyses = load_isoflop(sweep_dir)
    for key in ("approach2", "approach3"):
        for res in analyses:
            e = res.exponents.get(key)
            if e is not None:
                return float(e.N_opt(C)), key, res.group
    raise ValueError(
        f"{sweep_dir}: no group has an approach-2 or approach-3 exponent (fewer than two bracketed budgets "
        "and no law allocation); see `florenz-scaling fit DIR --isoflop`"
    )


def next_budget(sweep_dir: str | Path, C: float, k: int = 5, out: str | Path | None = None) -> NextBudget:
    """Write the sweep YAML of a new budget ``C`` (GMACs) for a finished budget sweep; say what it holds."""
    sd = SweepDir(sweep_dir)
    spec = load_sweep(sd.sweep_yaml)
    if spec.budget is None:
        raise ValueError(f"{sd.sweep_yaml}: not a compute-budget sweep (no budget: section)")
    n_opt, approach, group = predict_n_opt(sd.root, C)
    family = get_size(spec.sizes[0]).family
    names, bracketed = _sizes_for(spec.sizes, n_opt, family, k)
    plain = to_plain(spec)
    plain["name"] = f"{spec.name}-next-{C:g}"
    plain["sizes"] = names
    plain["budget"] = {**plain["budget"], "compute_gmacs": [float(C)], "tokens_per_param": None}
    path = Path(out) if out else sd.root / f"next-budget-{C:g}.yaml"
    params = tuple(get_size(n).params for n in names)
    note = (
        f"N_opt({C:g}) = {n_opt:.4g} from {approach}"
        + (f" (group {group})" if group else "")
        + f"; sizes from the registry ({family}) nearest it: {', '.join(names)}"
        + (
            ""
            if bracketed
            else "; the registry has no size on one side of N_opt, so the new budget's "
            "minimum will not be bracketed: add a size to spec/sizes.py"
        )  # fmt: skip
    )
    header = f"# Next budget of {sd.root.name}, written by `florenz-scaling plan DIR --next-budget {C:g}`.\n"
    write_atomic(
        path, header + "".join(f"# {line}\n" for line in _wrap(note)) + yaml.safe_dump(plain, sort_keys=False)
    )
    return NextBudget(float(C), n_opt, approach, group, tuple(names), params, bracketed, note, path)


def _sizes_for(current: Any, n_opt: float, family: str, k: int) -> tuple[list[str], bool]:
    """Registry sizes of the sweep's family that run on its images: the tiny ladders and the paper's are kept
    apart, and so are tiny ladders of other image sizes (T-… at 64², TS-… at 96²)."""
    ref = SIZES[current[0]]
    ladder = sorted(
        (s for s in SIZES.values() if (s.family, s.tiny, s.image_size) == (family, ref.tiny, ref.image_size)),
        key=lambda s: s.params,
    )
    if len(ladder) < k:
        raise ValueError(f"the registry has {len(ladder)} such size(s); --sizes {k} asks for more")
    logs = [math.log(s.params) for s in ladder]
    target = math.log(n_opt)
    best = min(range(len(ladder) - k + 1), key=lambda i: abs((logs[i] + logs[i + k - 1]) / 2 - target))
    chosen = ladder[best : best + k]
    return [s.name for s in chosen], chosen[0].params < n_opt < chosen[-1].params


def _wrap(text: str, width: int = 100) -> list[str]:
    words, lines, line = text.split(), [], ""
    for w in words:
        if len(line) + len(w) + 1 > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return lines + ([line] if line else [])
