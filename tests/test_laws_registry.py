"""One registry of laws: nothing outside ``fit/laws`` branches on a law's name; the built-ins' contracts."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from florenz_scaling.fit import FitResult, get_law, law_names
from florenz_scaling.fit.laws import builtin_names

PACKAGE = Path(__file__).resolve().parents[1] / "florenz_scaling"
REGISTRY = PACKAGE / "fit" / "laws"


def _strings(node: ast.AST) -> list[str]:
    """String constants of a node, looking into tuple, list and set displays."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [s for e in node.elts for s in _strings(e)]
    return []


def name_branches(path: Path, names: set[str]) -> list[str]:
    """Where a file compares with a law-name literal, keys a dict display by one, or subscripts with one."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        found: list[str] = []
        if isinstance(node, ast.Compare):
            found = [s for side in (node.left, *node.comparators) for s in _strings(side)]
        elif isinstance(node, ast.Dict):
            found = [s for k in node.keys if k is not None for s in _strings(k)]
        elif isinstance(node, ast.Subscript):
            found = _strings(node.slice)
        hits = [s for s in found if s in names]
        if hits:
            out.append(f"{path.name}:{node.lineno}: {', '.join(hits)}")
    return out


def test_no_module_outside_the_registry_compares_a_law_name_with_a_string() -> None:
    names = set(builtin_names())
    files = [p for p in PACKAGE.rglob("*.py") if REGISTRY not in p.parents]
    bad = [hit for p in files for hit in name_branches(p, names)]
    assert not bad, "law names branched on outside fit/laws:\n" + "\n".join(bad)


def test_the_checker_sees_each_kind_of_branch(tmp_path: Path) -> None:
    src = tmp_path / "x.py"
    src.write_text(
        'if law == "chinchilla": pass\n'
        'if law in ("compute", "size-data"): pass\n'
        'T = {"saturating-compute": 3}\n'
        'v = T["farseer"]\n'
        'ok = axis == "size"\n'
    )
    hits = name_branches(src, set(builtin_names()))
    assert [h.split(":")[1] for h in hits] == ["1", "2", "3", "4"]


def test_built_ins_are_registered_in_order() -> None:
    assert builtin_names() == (
        "compute",
        "size-data",
        "chinchilla",
        "saturating-compute",
        "chinchilla-tied",
        "data-constrained",
        "farseer",
    )
    assert law_names()[: len(builtin_names())] == builtin_names()
    assert get_law("compute").linear_in_logs and get_law("size-data").linear_in_logs
    assert not get_law("chinchilla").linear_in_logs
    assert get_law("data-constrained").inputs == ("N", "D", "U")
    with pytest.raises(ValueError, match="unknown law 'kaplan'"):
        get_law("kaplan")
    with pytest.raises(ValueError, match="unknown law"):
        FitResult(law="kaplan", params={})


@pytest.mark.parametrize(
    "name",
    [
        "compute",
        "size-data",
        "chinchilla",
        "saturating-compute",
        "chinchilla-tied",
        "data-constrained",
        "farseer",
    ],
)
def test_every_built_in_jacobian_is_exact(name: str) -> None:
    """Against central differences of the prediction, which the law itself never uses."""
    law = get_law(name)
    rng = np.random.default_rng(0)
    n = 7
    cols = {"N": rng.uniform(1e8, 5e9, n), "D": rng.uniform(5e9, 5e11, n), "C": rng.uniform(1e18, 1e22, n)}
    cols["U"] = cols["D"] / rng.uniform(2.0, 30.0, n)
    x = {k: cols[k] for k in law.inputs}
    params = law.nominal(np.column_stack(list(x.values())))
    if name == "farseer":  # its middle starts predict ~1e9: differences would cancel; the published fit
        params = dict(
            zip(
                law.param_names,
                (3.1333, -0.06247, 0.13, 0.12849, 230.73, -0.1729, -1.5442, -1.6656, 0.0459),
                strict=True,
            )
        )
    J = law.jacobian(params, **x)
    assert J.shape == (n, law.n_params)
    for j, p in enumerate(law.param_names):
        h = 1e-6 * max(1.0, abs(params[p]))
        up, dn = dict(params), dict(params)
        up[p] += h
        dn[p] -= h
        fd = (law.predict(up, **x) - law.predict(dn, **x)) / (2 * h)
        np.testing.assert_allclose(J[:, j], fd, rtol=1e-5, atol=1e-9 * np.abs(fd).max(), err_msg=p)


def test_size_data_predicts_from_the_papers_names_and_the_tables() -> None:
    r = FitResult(law="size-data", params={"beta0": 2.0, "beta1": -0.1, "beta2": -0.05})
    a = r.predict(P=[1e9, 2e9], S=1e6)
    np.testing.assert_allclose(a, r.predict(N=[1e9, 2e9], D=1e6))
    with pytest.raises(TypeError, match="takes N, D"):
        r.predict(C=1e9)
