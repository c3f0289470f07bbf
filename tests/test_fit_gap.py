"""The gap law log10(L_A/L_B) = γ0 + γ1·log10 C: a known slope is recovered within its interval, and the
closing compute (or why the gap does not close) follows from it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from florenz_scaling.fit import GapFit, fit_gap

C = np.geomspace(1e8, 1e11, 16)


def paired(gamma0: float, gamma1: float, seed: int, sigma: float = 0.004) -> pd.DataFrame:
    """SC on the paper's Eq. 1; UC = SC · 10^(γ0 + γ1 log10 C) with independent noise on each group."""
    rng = np.random.default_rng(seed)
    sc = 10 ** (1.42 - 0.15 * np.log10(C) + rng.normal(0, sigma, len(C)))
    uc = sc * 10 ** (gamma0 + gamma1 * np.log10(C) + rng.normal(0, sigma, len(C)))
    runs = [f"r{i}" for i in range(len(C))]
    return pd.concat(
        [
            pd.DataFrame({"run_id": runs, "C": C, "loss": sc, "group": "SC"}),
            pd.DataFrame({"run_id": runs, "C": C, "loss": uc, "group": "UC"}),
        ],
        ignore_index=True,
    )


def test_known_slope_is_recovered_within_its_interval() -> None:
    hits = 0
    for seed in range(40):
        g = fit_gap(paired(0.5, -0.04, seed))
        lo, hi = g.ci["gamma1"]
        hits += lo <= -0.04 <= hi
        assert g.params["gamma1"] == pytest.approx(-0.04, abs=0.01)
    assert hits >= 34  # 95% intervals over 40 seeds


def test_a_closing_gap_gives_its_compute_with_a_fieller_interval() -> None:
    g = fit_gap(paired(0.5, -0.04, 0))
    assert g.closes is True and g.close_at == pytest.approx(10 ** (0.5 / 0.04), rel=0.5)
    lo, hi = g.close_ci
    assert lo < g.close_at < hi and "extrapolation" in g.evidence and g.name == "UC − SC"
    assert g.n_points == 16 and g.gap_at_max > 0
    assert GapFit.from_json(g.to_json()) == g


def test_a_widening_or_flat_gap_does_not_close_and_says_why() -> None:
    wide = fit_gap(paired(0.0, 0.03, 1))
    assert wide.closes is False and wide.close_at is None and "widens" in wide.evidence
    flat = fit_gap(paired(0.1, 0.0, 2))
    assert flat.closes is None and "includes 0" in flat.evidence
    with pytest.raises(ValueError, match="no points for group ST"):
        fit_gap(paired(0.1, 0.0, 2), "ST", "SC")
