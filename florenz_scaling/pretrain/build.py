"""Build (or reuse) a sweep's tiny components in the cache and point the sweep's ``pretrained:`` at them.

    sweep spec ─▶ prepare data (the sweep's two tokenizers) ─▶ plan_components ─▶ for each missing component,
    in dependency order, up to ``workers`` at a time: build into CACHE/.building-<name>-<pid>/, write
    component.json last, rename onto CACHE/<name>/ ─▶ spec with pretrained: {size: {florence, gemma}}

A component directory is complete exactly when ``component.json`` exists (the rename makes it appear whole);
an ``fcntl`` lock per component keeps two processes from building the same one. ``component.json`` holds the
provenance: the spec and its hash, the held-out numbers, timings, threads, code and library versions.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from florenz_scaling.files import SweepDir, write_atomic
from florenz_scaling.pretrain.recipe import (
    DONE_FILE,
    Component,
    ComponentPlan,
    cache_dir,
    dependencies,
    plan_components,
)
from florenz_scaling.spec import Pretrained, SweepSpec


@dataclass
class ComponentsReport:
    """What ``build_components`` did: the plan, the cache, and per component name its directory, whether it
    was built now (else reused) and the build's wall time."""

    plan: ComponentPlan
    cache: Path
    built: dict[str, float] = field(default_factory=dict)  # name -> seconds, for components built now
    reused: list[str] = field(default_factory=list)

    def directory(self, comp: Component) -> Path:
        return self.cache / comp.name


def is_built(directory: Path) -> bool:
    return (directory / DONE_FILE).is_file()


def read_component(directory: str | Path) -> dict[str, Any]:
    """A component's ``component.json`` (provenance and held-out numbers)."""
    return json.loads((Path(directory) / DONE_FILE).read_text())


def _code_version() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, Any] = {}
    try:
        out["package"] = version("florenz-scaling")
    except PackageNotFoundError:
        out["package"] = None
    try:
        git = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        out["git"] = git.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        out["git"] = None
    return out


def build_component(
    comp: Component, size: str, cache: Path, data_dir: Path, heldout: int, threads: int = 1
) -> Path:
    """Build ``comp`` (for ``size``, the first size using it) into ``cache/<name>/`` unless it is there."""
    import torch
    import transformers

    from florenz_scaling.data.prepare import ENCODER_DIR
    from florenz_scaling.data.tokenizer import Tokenizer
    from florenz_scaling.pretrain.loop import torch_threads
    from florenz_scaling.spec.sizes import get_size

    target = cache / comp.name
    if is_built(target):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{comp.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if is_built(target):  # another process built it while we waited
            return target
        tmp = cache / f".building-{comp.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        t0 = time.perf_counter()
        spec = comp.spec
        with torch_threads(threads):
            if comp.kind == "tower":
                from florenz_scaling.pretrain.vision import train_tower

                result = train_tower(get_size(size).vision, spec, tmp, heldout)
            elif comp.kind == "vision" and comp.needs is not None:
                from florenz_scaling.pretrain.vision import train_projector

                assert is_built(cache / comp.needs.name)
                result = train_projector(get_size(size), spec, cache / comp.needs.name, tmp, heldout)
            elif comp.kind == "vision":
                from florenz_scaling.pretrain.vision import train_vision

                result = train_vision(get_size(size), spec, tmp, heldout)
            elif comp.kind == "florence":
                from florenz_scaling.pretrain.florence import train_florence

                assert comp.needs is not None and is_built(cache / comp.needs.name)
                # Florence-2 has one vocabulary: the encoder's, for its prompts and its English captions.
                encoder_tokenizer = Tokenizer.load(data_dir / ENCODER_DIR)
                result = train_florence(
                    get_size(size), spec, cache / comp.needs.name, encoder_tokenizer, tmp, heldout
                )
            else:
                from florenz_scaling.pretrain.gemma import train_gemma

                result = train_gemma(get_size(size).decoder, spec, Tokenizer.load(data_dir), tmp, heldout)
        result["timings"]["total_s"] = round(time.perf_counter() - t0, 2)
        record = {
            "name": comp.name,
            "kind": comp.kind,
            "hash": comp.hash,
            "spec": spec,
            "needs": comp.needs.name if comp.needs else None,
            "built_for": size,
            **result,
            "threads": threads,
            "code": _code_version(),
            "versions": {
                "python": sys.version.split()[0],
                "torch": torch.__version__,
                "transformers": transformers.__version__,
            },
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_atomic(tmp / DONE_FILE, json.dumps(record, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(target, ignore_errors=True)  # a leftover without component.json
        os.replace(tmp, target)
    return target


def _sizes(spec: SweepSpec) -> list[str]:
    return list(dict.fromkeys([*spec.sizes, *(r.size for r in spec.extra_runs)]))


def _first_size(plan: ComponentPlan, comp: Component) -> str:
    for size, fields in plan.by_size.items():
        for c in fields.values():
            if c == comp or comp in dependencies(c):
                return size
    raise KeyError(comp.name)


def _chain_cost(plan: ComponentPlan, comp: Component) -> float:
    """A component's cost plus that of everything waiting for it: the longest chains start first."""
    return comp.cost + sum(c.cost for c in plan.components if comp in dependencies(c))


def build_components(
    spec: SweepSpec,
    sweep_dir: str | Path,
    *,
    cache: str | Path | None = None,
    workers: int | None = None,
    log: Callable[[str], None] = print,
) -> ComponentsReport:
    """Build every component ``spec`` needs that the cache lacks, ``workers`` processes at a time (default:
    ``launch.array_parallelism`` capped at the CPU count; 1 builds in this process), one thread each."""
    from florenz_scaling.data import prepare

    assert spec.components is not None, "the sweep has no `components:` section"
    data = prepare(spec.data, SweepDir(sweep_dir).data)
    manifest = data.manifest
    sha, encoder_sha = manifest["tokenizer"]["sha1"], manifest["encoder_tokenizer"]["sha1"]
    plan = plan_components(_sizes(spec), spec.pretrained, spec.components, spec.data, sha, encoder_sha)
    report = ComponentsReport(plan, cache_dir(spec.components, cache))
    report.cache.mkdir(parents=True, exist_ok=True)
    todo = [c for c in plan.components if not is_built(report.directory(c))]
    report.reused = [c.name for c in plan.components if c not in todo]
    if not todo:
        return report
    threads = spec.train.threads if spec.train.threads > 0 else 1
    if workers is None:
        workers = min(spec.launch.array_parallelism, os.cpu_count() or 1)
    workers = max(1, min(workers, len(todo)))
    log(
        f"components: building {len(todo)} in {report.cache} ({workers} at a time), reusing "
        f"{len(report.reused)}"
    )
    args = (report.cache, data.directory, spec.components.heldout, threads)
    if workers == 1:
        for comp in todo:
            t0 = time.perf_counter()
            build_component(comp, _first_size(plan, comp), *args)
            _done(report, comp, time.perf_counter() - t0, log)
        return report
    _build_parallel(plan, todo, report, args, workers, log)
    return report


def _build_parallel(
    plan: ComponentPlan,
    todo: list[Component],
    report: ComponentsReport,
    args: tuple,
    workers: int,
    log: Callable[[str], None],
) -> None:
    """Each build in its own ``python -m florenz_scaling.pretrain.worker`` process (no fork of the caller's
    torch threads, no re-import of its main module), at most ``workers`` at once, dependencies first."""
    cache, data_dir, heldout, threads = args
    waiting = sorted(todo, key=lambda c: -_chain_cost(plan, c))
    running: dict[subprocess.Popen, tuple[Component, float, Path]] = {}
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    try:
        while waiting or running:
            for comp in [c for c in waiting if c.needs is None or is_built(report.directory(c.needs))]:
                if len(running) >= workers:
                    break
                waiting.remove(comp)
                job = {
                    "component": _to_json(comp),
                    "size": _first_size(plan, comp),
                    "cache": str(cache),
                    "data_dir": str(data_dir),
                    "heldout": heldout,
                    "threads": threads,
                }
                logfile = cache / f".{comp.name}.log"
                with open(logfile, "w") as out:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "florenz_scaling.pretrain.worker", json.dumps(job)],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                    )
                running[proc] = (comp, time.perf_counter(), logfile)
            if not running:
                raise RuntimeError(f"components {[c.name for c in waiting]} wait for ones not built")
            time.sleep(0.2)
            for proc in [p for p in running if p.poll() is not None]:
                comp, t0, logfile = running.pop(proc)
                if proc.returncode != 0:
                    tail = logfile.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"building component {comp.name} failed ({logfile}):\n{tail}")
                logfile.unlink(missing_ok=True)
                _done(report, comp, time.perf_counter() - t0, log)
    finally:
        for proc in running:  # an error or Ctrl-C: stop the other builds (their temp dirs stay private)
            proc.terminate()
            proc.wait()


def _to_json(comp: Component) -> dict[str, Any]:
    return {"kind": comp.kind, "config": comp.config, "needs": _to_json(comp.needs) if comp.needs else None}


def _from_json(d: dict[str, Any]) -> Component:
    return Component(d["kind"], d["config"], _from_json(d["needs"]) if d["needs"] else None)


def _done(report: ComponentsReport, comp: Component, seconds: float, log: Callable[[str], None]) -> None:
    report.built[comp.name] = seconds
    log(
        f"components: {comp.name} built in {seconds:.0f} s: {summary(read_component(report.directory(comp)))}"
    )


def summary(record: dict[str, Any]) -> str:
    """One line of a component's held-out numbers."""
    h = record.get("heldout", {})
    if "attribute_accuracy" in h:
        return "held-out attribute accuracy " + ", ".join(
            f"{k} {v:.2f}" for k, v in h["attribute_accuracy"].items()
        )
    if "caption_en" in h:
        c = h["caption_en"]
        return f"held-out en caption loss {c['loss']:.3f}, image-shuffle gap {c['image_gap']:+.3f}"
    if "lm_loss" in h:
        return "held-out LM loss " + ", ".join(f"{k} {v:.2f}" for k, v in h["lm_loss"].items())
    return ""


def with_components(spec: SweepSpec, report: ComponentsReport) -> SweepSpec:
    """``spec`` with every size's missing ``pretrained`` fields pointing at its components."""
    pretrained = dict(spec.pretrained)
    for size, fields in report.plan.by_size.items():
        pre = pretrained.get(size) or Pretrained()
        paths = {f: str(report.directory(c)) for f, c in fields.items() if getattr(pre, f) is None}
        pretrained[size] = dataclasses.replace(pre, **paths)
    return dataclasses.replace(spec, pretrained=pretrained)


def ensure_components(
    spec: SweepSpec,
    sweep_dir: str | Path,
    *,
    cache: str | Path | None = None,
    workers: int | None = None,
    log: Callable[[str], None] = print,
) -> SweepSpec:
    """The sweep as it should run: unchanged without ``components:``; otherwise its components are built
    (or reused from the cache) and ``pretrained:`` names them for every size that does not name its own."""
    if spec.components is None:
        return spec
    return with_components(spec, build_components(spec, sweep_dir, cache=cache, workers=workers, log=log))
