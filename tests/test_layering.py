"""The folder tree is the flow: every import between the stages is one the design's table allows.

spec → plan → launch → train (model, data) → results → fit → plot → report, with cli on top. Imports inside
functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "florenz_scaling"

# Stage -> the stages it may import (besides itself). The design's table, with three additions, each for a
# file the stage writes or a fact it reads: plan writes plan.csv with the one atomic writer (files), data
# writes its tokenizer and manifest the same way (files), fit and plot write fits/ and plots/ (files).
ALLOWED: dict[str, set[str]] = {
    "files": set(),
    "spec": {"files"},
    "plan": {"spec", "files"},
    "launch": {"spec", "plan", "files"},
    "model": {"spec.sizes"},
    "data": {"spec", "files"},
    "results": {"spec", "plan", "files"},
    "train": {"spec", "model", "data", "results.records", "files"},
    # Pretraining the tiny components the sweep starts from is training too (the design: next to train/).
    "pretrain": {"spec", "model", "data", "results.records", "files", "train"},
    "fit": {"spec", "results", "files"},
    "design": {"spec", "plan", "fit", "results", "files"},  # between fit and plan: reads fits, writes plans
    "plot": {"results", "fit", "files", "spec"},
    "report": {"plan", "launch.status", "results", "fit", "files", "spec"},
    "cli": {"*"},
}
# Deliberate exceptions: the dry-run builds every size on the meta device to check it (torch stays lazy),
# and reads each checkpoint's config and keys and each tokenizer's vocabulary before anything is submitted.
EXCEPTIONS = {("launch.dryrun", "model"), ("launch.dryrun", "data.tokenizer")}
LIGHT = ("spec", "plan", "launch", "results", "fit", "plot", "report", "cli")
HEAVY = ("torch", "transformers", "deepspeed")


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Each ``florenz_scaling.X`` this file imports anywhere: (line, dotted name below the package)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "florenz_scaling":
                out += [(node.lineno, a.name) for a in node.names]
            elif node.module.startswith("florenz_scaling."):
                base = node.module.removeprefix("florenz_scaling.")
                out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            out += [
                (node.lineno, a.name.removeprefix("florenz_scaling."))
                for a in node.names
                if a.name.startswith("florenz_scaling.")
            ]
    return out


def _permitted(module: str, target: str) -> bool:
    stage = module.split(".")[0] if module else ""
    if not stage or target.split(".")[0] == stage:
        return True  # the package root, or a module of the same stage
    if any(module.startswith(m) and target.startswith(t) for m, t in EXCEPTIONS):
        return True
    allowed = ALLOWED.get(stage)
    assert allowed is not None, f"florenz_scaling.{module} is in no stage of the table; add it to ALLOWED"
    return "*" in allowed or any(target == a or target.startswith(a + ".") for a in allowed)


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_import_between_stages_is_allowed() -> None:
    bad = []
    for path in _modules():
        module = _module_name(path)
        for line, target in _imports(path):
            if not _permitted(module, target):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports florenz_scaling.{target}")
    assert not bad, "imports the layering table does not allow:\n" + "\n".join(bad)


def test_nothing_imports_the_cli() -> None:
    bad = [
        f"{p.relative_to(PACKAGE.parent)}:{line}"
        for p in _modules()
        if _module_name(p).split(".")[0] != "cli"
        for line, target in _imports(p)
        if target.split(".")[0] == "cli"
    ]
    assert not bad, bad


def test_the_checker_catches_a_forbidden_lazy_import(tmp_path: Path) -> None:
    src = tmp_path / "x.py"
    src.write_text("def f():\n    from florenz_scaling.train.run import main\n")
    assert _imports(src) == [(2, "train.run.main")]
    assert not _permitted("fit.io", "train.run.main")
    assert not _permitted("spec.sweep", "plan")
    assert _permitted("cli.run", "train")


def test_no_module_is_over_about_400_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n for p in _modules() if (n := len(p.read_text().splitlines())) > 420
    }
    assert not long, long


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    names = {_module_name(p) for p in _modules()}
    for path in _modules():
        deps = set()
        for _, target in _imports(path):
            # "a.b.name" is module a.b (name imported from it) or module a.b.name itself.
            deps.add(target if target in names else target.rpartition(".")[0])
        graph[_module_name(path)] = {d for d in deps if d in names and d != _module_name(path)}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d) :] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


@pytest.mark.parametrize("stage", LIGHT)
def test_light_stages_import_without_torch(stage: str) -> None:
    code = f"import sys, florenz_scaling.{stage}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing florenz_scaling.{stage} loads {out.stdout.strip()}"


def test_every_package_states_its_public_names() -> None:
    import importlib

    for init in sorted(PACKAGE.glob("*/__init__.py")):
        name = f"florenz_scaling.{init.parent.name}"
        if init.parent.name == "cli":
            continue  # the command is its surface
        mod = importlib.import_module(name)
        assert isinstance(getattr(mod, "__all__", None), list) and mod.__all__, f"{name} has no __all__"
        missing = [n for n in mod.__all__ if not hasattr(mod, n)]
        assert not missing, f"{name}.__all__ names what it does not define: {missing}"


def _readme_layering() -> dict[str, tuple[str, str]]:
    """The README's layering table: stage -> (what it holds, what it may import)."""
    text = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)(?:/|\.py)` \| (.+) \| (.+) \|$", text, flags=re.M)
    return {name: (holds, imports) for name, holds, imports in rows}


def test_the_readme_layering_table_is_this_table_and_the_tree() -> None:
    table = _readme_layering()
    stages = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" and p.stem != "__init__"}
    stages |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert set(table) == stages == set(ALLOWED), "README rows, the package's stages and ALLOWED differ"
    for stage, (holds, imports) in table.items():
        named = set(re.findall(r"`([\w.]+)`", imports.split("(")[0]))
        if stage == "pretrain":  # "as `train`, and `train`"
            named = ALLOWED["train"] | {"train"}
        expected = ALLOWED[stage] if ALLOWED[stage] != {"*"} else set()
        assert named == expected, f"README: {stage} may import {sorted(named)}; ALLOWED: {sorted(expected)}"
        for module in re.findall(r"`(\w+)`", holds):  # the modules a package's row names exist
            here = PACKAGE / stage
            if here.is_dir():
                assert (here / f"{module}.py").exists() or (here / module).is_dir(), f"{stage}/{module}"
    exceptions = {(a.split(".")[1], b) for a, b in EXCEPTIONS}
    assert exceptions == {("dryrun", "model"), ("dryrun", "data.tokenizer")}
    assert "`dryrun`: also `model`, `data.tokenizer`" in table["launch"][1]
