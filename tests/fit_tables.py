"""A demo-like collected table at paper sizes for the fit and verdict tests (a helper module: test modules
import it, never each other): 3 sizes × 3 step counts, six pairs in three groups, losses from a known law."""

from __future__ import annotations

import numpy as np
import pandas as pd

from florenz_scaling.results import TABLE_COLUMNS

F = {0.43e9: 56.0, 1.03e9: 151.0, 3.48e9: 466.0, 11.22e9: 1462.0}


COEF = {"SC": (2.20, -0.13, -0.15), "UC": (2.30, -0.16, -0.04), "ST": (3.03, -0.15, -0.19)}


PAIRS = [
    ("caption", "en", "SC"),
    ("caption", "de", "SC"),
    ("caption", "fr", "UC"),
    ("caption", "es", "UC"),
    ("translate", "de", "ST"),
    ("translate", "fr", "ST"),
]


def demo_table(sizes=(0.43e9, 1.03e9, 3.48e9), steps=(500, 2000, 5000), seed=0) -> pd.DataFrame:
    """A tiny demo sweep: 3 sizes × 3 step counts = 9 runs, two checkpoints each (only the last is final)."""
    rng = np.random.default_rng(seed)
    rows = []
    for P in sizes:
        for st in steps:
            rid = f"s{P / 1e9:.2f}b-{st}"
            for k in (st // 2, st):
                S = k * 1024
                for task, lang, g in PAIRS:
                    b0, b1, b2 = COEF[g]
                    loss = 10 ** (b0 + b1 * np.log10(P) + b2 * np.log10(S) + rng.normal(0, 0.01))
                    rows.append(
                        {
                            "run_id": rid,
                            "size": f"{P / 1e9:.2f}B",
                            "family": "florenz",
                            "params": int(P),
                            "trainable_params": int(P * 0.6),
                            "fwd_gmacs": F[P],
                            "total_steps": st,
                            "global_batch": 1024,
                            "step": k,
                            "seen_samples": S,
                            "compute_gmacs": S * F[P] * 1.6,
                            "task": task,
                            "lang": lang,
                            "group": g,
                            "loss": loss,
                            "samples": 100 + 10 * len(lang),
                            "tokens": 3000,
                            "final": k == st,
                            "partial": False,
                        }
                    )
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
