"""Reading points (a sweep's results.csv or any N, D, C, loss CSV), writing fits/<law>-<group>.json and
reading them back (``load_fits``)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from florenz_scaling.fit.laws import get_law, law_from_definition, register
from florenz_scaling.fit.reference import PAPER_FILE
from florenz_scaling.fit.result import FitResult
from florenz_scaling.spec import LAWS

RESULTS_FILE = "results.csv"
METRICS_FILE = "metrics.csv"
FITS_DIR = "fits"
POINT_COLUMNS = ("N", "D", "C", "loss", "task", "lang", "group", "run_id")
# Column names of published tables mapped onto ours (Epoch's Chinchilla extraction).
ALIASES = {
    "Model Size": "N",
    "Training FLOP": "C",
    "Tokens": "D",
    "tokens": "D",
    "params": "N",
    "unique_tokens": "U",  # ScaleBench's data-constrained pool: unique tokens of the data
}
SWEEP_COLUMNS = ("params", "seen_samples", "compute_gmacs", "final")


def _truthy(s: Any) -> Any:
    """A boolean column as written by pandas (bool) or read back from CSV (True/False/1/0 strings)."""
    if s.dtype == bool:
        return s
    return s.astype(str).str.strip().str.lower().isin(("true", "1", "yes"))


def sweep_points(table: Any, level: str = "group") -> Any:
    """Points from a collected sweep table (``results.TABLE_COLUMNS``): final checkpoint of each run only.

    Partially evaluated rows (``partial`` true) and diverged runs (a non-finite loss) are dropped.
    ``level="group"`` averages the pairs of each group with ``results.group_losses`` (sample-weighted, as the
    paper does; a group missing a pair gets no point); ``level="pair"`` keeps one row per (run, task,
    language). Maps N = params, D = seen_samples, C = compute_gmacs (GMACs, paper Eq. 2).
    ``result.attrs["left_out"]`` maps each run of the table that gave no point (or not every point) to why.
    """
    import pandas as pd

    from florenz_scaling.results import group_losses

    if level not in ("group", "pair"):
        raise ValueError("level must be 'group' or 'pair'")
    t = pd.DataFrame(table)
    left_out: dict[str, str] = {}
    all_runs = set(t["run_id"].astype(str))
    if "diverged" in t.columns:
        bad = _truthy(t["diverged"])
        why = "diverged (a non-finite held-out loss)"
        left_out.update({r: why for r in t.loc[bad, "run_id"].astype(str)})
        t = t[~bad]
    t = t[_truthy(t["final"])]
    if "partial" in t.columns:
        t = t[~_truthy(t["partial"])]
    for r in sorted(all_runs - set(t["run_id"].astype(str)) - set(left_out)):
        left_out[r] = "no complete final evaluation yet"
    if t.empty:
        raise ValueError("no final, fully evaluated checkpoints in the sweep table")
    if level == "group":
        t = group_losses(t)
        for gap in t.attrs.get("incomplete", []):
            left_out.setdefault(str(gap["run_id"]), f"group {gap['group']} lacks {', '.join(gap['missing'])}")
    out = pd.DataFrame(
        {
            "N": t["params"].astype(float).to_numpy(),
            "D": t["seen_samples"].astype(float).to_numpy(),
            "C": t["compute_gmacs"].astype(float).to_numpy(),
            "loss": t["loss"].astype(float).to_numpy(),
            "run_id": t["run_id"].astype(str).to_numpy(),
            "group": t["group"].astype(str).to_numpy(),
        }
    )
    if level == "pair":
        out["task"] = t["task"].astype(str).to_numpy()
        out["lang"] = t["lang"].astype(str).to_numpy()
    for col in ("size", "step"):
        if col in t.columns:
            out[col] = t[col].to_numpy()
    out.attrs["source"] = "sweep"
    out.attrs["left_out"] = left_out
    out.attrs["flop_convention"] = "C = compute_gmacs: S·F·(1 + P_t/P) GMACs (paper Eq. 2)"
    return out


def load_points(path_or_dir: str | Path, *, level: str = "pair") -> Any:
    """Points table with columns N, D, C, loss (+ task, lang, group, run_id where known).

    A directory is read as a sweep (``DIR/results.csv``, see ``sweep_points``); a CSV with the sweep's columns
    likewise; any other CSV must have ``loss`` and some of N, D, C (aliases: "Model Size", "Training FLOP").
    A missing D is derived as C/(6N), a missing C as 6·N·D (the Chinchilla FLOP convention; recorded in
    ``attrs["flop_convention"]``).
    """
    import pandas as pd

    p = Path(path_or_dir)
    csv = p / RESULTS_FILE if p.is_dir() else p
    if not csv.exists():
        raise FileNotFoundError(f"{csv} not found (run `florenz-scaling collect` for a sweep)")
    t = pd.read_csv(csv)
    if all(c in t.columns for c in SWEEP_COLUMNS):
        from florenz_scaling.results import read_table

        return sweep_points(read_table(csv), level=level)
    t = t.rename(columns={k: v for k, v in ALIASES.items() if k in t.columns and v not in t.columns})
    if "loss" not in t.columns:
        raise ValueError(f"{csv}: needs a 'loss' column (and N, D, C); has {', '.join(t.columns)}")
    t.attrs["flop_convention"] = "as given"
    if "D" not in t.columns and {"N", "C"} <= set(t.columns):
        t["D"] = t["C"] / (6.0 * t["N"])
        t.attrs["flop_convention"] = "D = C / (6·N): C is training FLOPs (Chinchilla convention)"
    if "C" not in t.columns and {"N", "D"} <= set(t.columns):
        t["C"] = 6.0 * t["N"] * t["D"]
        t.attrs["flop_convention"] = "C = 6·N·D training FLOPs (derived)"
    if "run_id" not in t.columns:
        t["run_id"] = [f"row{i}" for i in range(len(t))]
    t.attrs["source"] = str(csv)
    return t


def read_targets(path: str | Path) -> Any:
    """Target rows to predict (``fit --predict``): a CSV with a law's input columns (aliases as for
    ``load_points``), a ``loss`` column optional."""
    import pandas as pd

    t = pd.read_csv(path)
    return t.rename(columns={k: v for k, v in ALIASES.items() if k in t.columns and v not in t.columns})


def select(points: Any, *, group: str | None = None, task: str | None = None, lang: str | None = None) -> Any:
    """Rows of one group or one (task, language) pair; raises if that selection is empty."""
    t = points
    for col, val in (("group", group), ("task", task), ("lang", lang)):
        if val is None:
            continue
        if col not in t.columns:
            raise ValueError(f"--{col} given but the input has no '{col}' column")
        t = t[t[col].astype(str) == str(val)]
    if t.empty:
        raise ValueError(f"no points for group={group} task={task} lang={lang}")
    return t


def fit_points(
    points: Any,
    law: str,
    *,
    bootstrap: int = 0,
    seed: int = 0,
    budgets: Sequence[float] | None = None,
    method: str = "auto",
    objective: str | None = None,
    validate: bool = True,
    group: str | None = None,
    task: str | None = None,
    lang: str | None = None,
) -> FitResult:
    """Fit one law to a points table, optionally bootstrap it, and attach a rollout check where possible.

    Chinchilla ``method="auto"`` uses variable projection when there are few runs (see ``FEW_POINTS``);
    ``objective`` ("huber-log" or "mse-raw") is the non-linear laws' objective (None: the law's default,
    Huber on log loss unless its residuals live on the raw loss). The result carries its
    ``verdict`` (``fit.verdict.assess``).
    """
    from florenz_scaling.fit.bootstrap import bootstrap as run_bootstrap
    from florenz_scaling.fit.bootstrap import fitter
    from florenz_scaling.fit.validate import rollout
    from florenz_scaling.fit.verdict import assess, fit_inputs

    found = get_law(law)
    fn = fitter(law, **found.fit_options(method, objective))
    res = fn(points)
    n_runs = points["run_id"].nunique() if "run_id" in points.columns else len(points)
    warnings = list(res.warnings)
    if bootstrap and n_runs >= 3:
        res = run_bootstrap(law, points, n=bootstrap, seed=seed, budgets=budgets, point=res)
    elif bootstrap:
        warnings.append(f"bootstrap skipped: only {n_runs} runs")
    checked = None
    if validate and "N" in points.columns and points["N"].nunique() >= 3:
        try:
            checked = rollout(points, law, by="N", holdout=1, **found.refit_options(res, objective))
        except (ValueError, np.linalg.LinAlgError) as e:
            warnings.append(f"rollout failed: {e}")
    left_out = getattr(points, "attrs", {}).get("left_out") or {}
    if left_out:
        why = "; ".join(f"{r}: {w}" for r, w in left_out.items())
        warnings.append(f"{len(left_out)} run(s) left out: {why}")
    extras = dict(res.extras)
    if "flop_convention" in getattr(points, "attrs", {}):
        extras["data_flop_convention"] = points.attrs["flop_convention"]
    res = res.replace(warnings=warnings, rollout=checked, extras=extras, group=group, task=task, lang=lang)
    return res.replace(verdict=assess(res, fit_inputs(law, points) or None))


def fit_sweep(
    sweep_dir: str | Path,
    laws: Sequence[str] = LAWS,
    bootstrap: int = 1000,
    per_pair: bool = False,
    *,
    seed: int = 0,
    budgets: Sequence[float] | None = None,
    objective: str = "huber-log",
    written_laws: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Fit every law for every group (and every pair if ``per_pair``) of a collected sweep.

    ``written_laws``: laws the sweep writes out (``fit.laws`` in its spec: name -> the definition of a
    ``--laws`` file), registered here, before fitting, exactly as a law file's (``fit.laws.user``).

    Reads ``sweep_dir/results.csv``, keeps the final checkpoint of each run, and writes
    ``sweep_dir/fits/<law>-<group>.json`` (per pair ``<law>-<task>_<lang>.json``), then the comparisons
    across groups (``write_comparisons``: joint-<law>.json, gap-UC-SC.json). Returns the paths written.
    A law that cannot be fitted on some subset (e.g. one Pareto point) is reported on stderr and skipped.
    """

    from florenz_scaling.files import write_atomic
    from florenz_scaling.results import read_table

    for name, definition in (written_laws or {}).items():
        register(law_from_definition(name, definition, "sweep fit.laws"), replace=True)
    root = Path(sweep_dir)
    table = read_table(root / RESULTS_FILE)
    out_dir = root / FITS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, Any, dict[str, str | None]]] = []
    groups = sweep_points(table, level="group")
    # Pairs in no group (e.g. en→fr translation under the paper's grouping) are fitted per pair only.
    for g in sorted(x for x in groups["group"].unique() if x):
        jobs.append((g, groups[groups["group"] == g], {"group": g}))
    if per_pair:
        pairs = sweep_points(table, level="pair")
        for (task, lang), sub in pairs.groupby(["task", "lang"], sort=True):
            grp = str(sub["group"].iloc[0])
            jobs.append((f"{task}_{lang}", sub, {"group": grp, "task": str(task), "lang": str(lang)}))
    written: list[Path] = []
    for name, pts, meta in jobs:
        for law in laws:
            try:
                res = fit_points(
                    pts, law, bootstrap=bootstrap, seed=seed, budgets=budgets, objective=objective, **meta
                )
            except (ValueError, np.linalg.LinAlgError) as e:
                print(f"warning: {law} on {name}: not fitted: {e}", file=sys.stderr)
                continue
            path = out_dir / f"{law}-{name}.json"
            write_atomic(path, res.to_json() + "\n")
            written.append(path)
    # A fit from an earlier, different table would be plotted next to the new ones as if current.
    # Per-pair fits (named task_lang) are only replaced by a per-pair run. But a table that lost points (a
    # diverged or incomplete run) is no reason to throw an earlier fit away: it is kept, and said so.
    left_out = {**groups.attrs.get("left_out", {})}
    for law in laws:
        for stale in out_dir.glob(f"{law}-*.json"):
            is_pair = "_" in stale.stem[len(law) + 1 :]
            if stale in written or not (per_pair or not is_pair):
                continue
            if left_out:
                print(
                    f"fit: kept earlier {stale.name}: not fittable now, but this table left out "
                    f"{len(left_out)} run(s): " + ", ".join(sorted(left_out)),
                    file=sys.stderr,
                )
                continue
            print(f"fit: removed stale {stale.name} (no longer fittable on this table)", file=sys.stderr)
            stale.unlink()
    written += write_comparisons(out_dir, groups, laws, keep_stale=bool(left_out))
    written += _metric_fits(root, out_dir, groups)
    if left_out:
        print(
            "fit: runs left out: " + "; ".join(f"{r}: {w}" for r, w in sorted(left_out.items())),
            file=sys.stderr,
        )
    return written


def _metric_fits(root: Path, out_dir: Path, groups: Any) -> list[Path]:
    """fits/metric-<metric>-<group>.json from DIR/metrics.csv (``fit.metrics``), when the sweep has one."""
    if not (root / METRICS_FILE).is_file():
        return []
    from florenz_scaling.fit.metrics import write_metric_fits
    from florenz_scaling.results import read_table

    written, skipped = write_metric_fits(out_dir, read_table(root / METRICS_FILE), groups)
    for why in skipped:
        print(f"warning: metric fit {why}", file=sys.stderr)
    return written


GAP_DEFAULT = ("UC", "SC")


def write_comparisons(
    out_dir: Path,
    groups: Any,
    laws: Sequence[str],
    *,
    keep_stale: bool = False,
    gap: tuple[str, str] = GAP_DEFAULT,
) -> list[Path]:
    """Across groups: the joint OLS fits (fits/joint-<law>.json) and the gap law (fits/gap-A-B.json).

    Only the OLS laws are fitted jointly here (cheap and exact); the non-linear joint fits are on request
    (``florenz-scaling fit DIR --law chinchilla --joint``). A comparison no longer fittable is removed, as a
    stale single fit is, unless the table lost points (``keep_stale``).
    """
    from florenz_scaling.files import write_atomic
    from florenz_scaling.fit.gap import fit_gap
    from florenz_scaling.fit.joint import fit_joint_ols

    named = sorted({g for g in groups["group"].astype(str) if g})
    jobs: list[tuple[str, Any]] = [
        (f"joint-{law}.json", lambda law=law: fit_joint_ols(groups, law))
        for law in laws
        if get_law(law).linear_in_logs and len(named) >= 2
    ]
    if set(gap) <= set(named):
        jobs.append((f"gap-{gap[0]}-{gap[1]}.json", lambda: fit_gap(groups, *gap)))
    written = []
    for name, job in jobs:
        try:
            write_atomic(out_dir / name, job().to_json() + "\n")
            written.append(out_dir / name)
        except (ValueError, np.linalg.LinAlgError) as e:
            print(f"warning: {name[:-5]}: not fitted: {e}", file=sys.stderr)
    for law in laws:
        stale = out_dir / f"joint-{law}.json"
        if stale.exists() and stale not in written and not keep_stale:
            stale.unlink()
    return written


# fits/ files that hold comparisons across groups, not single fits: {file-name prefix: their kind}.
# (metric-: the fits of generation metrics, ``fit.metrics``; they are not loss fits either.)
COMPARISON_PREFIXES = {"joint-": "joint", "gap-": "gap", "metric-": "metric"}


def _fit_files(sweep_dir: str | Path, kind: str) -> list[Path]:
    fits = Path(sweep_dir) / FITS_DIR
    if not fits.is_dir():
        return []
    out = []
    for p in sorted(fits.glob("*.json")):
        prefix = next((k for k, v in COMPARISON_PREFIXES.items() if p.name.startswith(k)), None)
        if p.name != PAPER_FILE and COMPARISON_PREFIXES.get(prefix, "fit") == kind:
            out.append(p)
    return out


def load_fits(sweep_dir: str | Path) -> list[FitResult]:
    """Every single fit in DIR/fits/*.json, in file-name order (the paper's coefficients file, the joint
    and gap comparisons and the metric fits are not single loss fits: ``load_joint``, ``load_gaps``,
    ``load_metric_fits``).

    Files written before the statistics became ``FitResult`` fields are read too (``FitResult.from_json``).
    """
    return [FitResult.from_json(p.read_text(encoding="utf-8")) for p in _fit_files(sweep_dir, "fit")]


def load_joint(sweep_dir: str | Path) -> list[Any]:
    """The joint fits in DIR/fits/joint-<law>.json (``fit.joint.JointFit``), in file-name order."""
    from florenz_scaling.fit.joint import JointFit

    return [JointFit.from_json(p.read_text(encoding="utf-8")) for p in _fit_files(sweep_dir, "joint")]


def load_gaps(sweep_dir: str | Path) -> list[Any]:
    """The gap laws in DIR/fits/gap-<A>-<B>.json (``fit.gap.GapFit``), in file-name order."""
    from florenz_scaling.fit.gap import GapFit

    return [GapFit.from_json(p.read_text(encoding="utf-8")) for p in _fit_files(sweep_dir, "gap")]


def load_metric_fits(sweep_dir: str | Path) -> list[Any]:
    """The generation-metric fits in DIR/fits/metric-<metric>-<group>.json (``fit.metrics.MetricFit``), in
    file-name order, every decoding and axis of each file."""
    from florenz_scaling.fit.metrics import read_metric_file

    return [f for p in _fit_files(sweep_dir, "metric") for f in read_metric_file(p)]
