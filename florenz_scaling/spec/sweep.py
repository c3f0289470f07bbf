"""Frozen, typed sweep specifications loaded from YAML with dotted command-line overrides.

One config tree (``SweepSpec``) is merged once at the entry point: YAML file, then ``-o key=value`` overrides,
then validation. Unknown keys, wrong types and inconsistent values raise ``SpecError`` naming the field and
the fix, before anything is planned or submitted.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from florenz_scaling.spec.identity import analysis, digest
from florenz_scaling.spec.load import SpecError, apply_overrides, check, from_dict, read_yaml, to_plain
from florenz_scaling.spec.sections import (
    BudgetSpec,
    ComponentsSpec,
    CostSpec,
    DataSpec,
    ExtraRun,
    FitSpec,
    GenerateSpec,
    GridSpec,
    LaunchSpec,
    Pretrained,
    TrainSpec,
    WandbSpec,
)


@dataclass(frozen=True)
class SweepSpec:
    """A whole scaling study: which runs, how each trains, where it runs, how it is fitted."""

    name: str
    sizes: tuple[str, ...] = ()
    grid: GridSpec | None = None
    budget: BudgetSpec | None = None
    extra_runs: tuple[ExtraRun, ...] = ()
    train: TrainSpec = field(default_factory=TrainSpec)
    data: DataSpec = field(default_factory=DataSpec)
    launch: LaunchSpec = field(default_factory=LaunchSpec)
    cost: CostSpec = field(default_factory=CostSpec)
    wandb: WandbSpec = field(default_factory=WandbSpec)
    fit: FitSpec = field(default_factory=FitSpec)
    generate: GenerateSpec = field(default_factory=GenerateSpec)
    pretrained: dict[str, Pretrained] = field(default_factory=dict)  # size -> checkpoints; else random init
    components: ComponentsSpec | None = None  # build tiny pretrained components for sizes without any
    seed: int = 44595

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Each section checks itself; these are the checks across sections, one named method each."""
        for named_check in (
            self._check_name,
            self._check_sizes,
            self._check_design,
            self._check_sections,
            self._check_batches,
            self._check_vocab,
            self._check_precision,
            self._check_components,
        ):
            named_check()

    def _check_name(self) -> None:
        check(
            bool(self.name) and self.name.replace("-", "").replace("_", "").isalnum(),
            "name",
            f"{self.name!r} is not a plain name",
            "use letters, digits, '-' and '_'",
        )

    def _check_sizes(self) -> None:
        """Every size named anywhere (sizes, extra runs, per-size launch, pretrained) is registered."""
        from florenz_scaling.spec.sizes import SEEING_IMAGE_SIZE, SIZES, GemmaConfigLite

        choose = f"choose from {', '.join(SIZES)}"
        for i, s in enumerate(self.sizes):
            check(s in SIZES, f"sizes[{i}]", f"unknown size {s!r}", choose)
        check(len(set(self.sizes)) == len(self.sizes), "sizes", "a size is listed twice", "list each once")
        for i, r in enumerate(self.extra_runs):
            check(r.size in SIZES, f"extra_runs[{i}].size", f"unknown size {r.size!r}", choose)
            check(r.steps > 0, f"extra_runs[{i}].steps", "must be positive")
        for size in self.launch.per_size:
            check(size in SIZES, f"launch.per_size.{size}", "unknown size", choose)
        for name in dict.fromkeys([*self.sizes, *(r.size for r in self.extra_runs)]):
            # A seeing tower (TS sizes) puts one token on each grid cell at its own image size only; its F
            # (and so C) is measured there too. (The w-ladder has always run at other sizes as well.)
            size = SIZES[name]
            check(
                size.image_size != SEEING_IMAGE_SIZE or size.image_size == self.data.image_size,
                "data.image_size",
                f"{self.data.image_size} differs from size {name}'s image size {size.image_size}",
                f"set data.image_size: {size.image_size}, or use sizes made for {self.data.image_size}²",
            )
        for size, pre in self.pretrained.items():
            check(size in SIZES, f"pretrained.{size}", "unknown size", choose)
            if pre.gemma is not None:
                check(
                    isinstance(SIZES[size].decoder, GemmaConfigLite),
                    f"pretrained.{size}.gemma",
                    f"size {size} has a BART decoder, so a Gemma-2 checkpoint does not apply",
                    "remove it, or give it to a Gemma size ("
                    + ", ".join(n for n, c in SIZES.items() if isinstance(c.decoder, GemmaConfigLite))
                    + ")",
                )

    def _check_design(self) -> None:
        """A sweep is a grid, a compute-budget sweep, or only extra runs."""
        check(
            bool(self.sizes) or bool(self.extra_runs),
            "sizes",
            "no sizes and no extra runs",
            "list model sizes, e.g. [T-1M, T-4M]",
        )
        check(
            not (self.grid and self.budget),
            "budget",
            "both grid and budget are given",
            "a sweep is either a grid or a compute-budget sweep; remove one",
        )
        check(
            bool(self.grid or self.budget or self.extra_runs),
            "grid",
            "no grid, budget or extra runs",
            "add `grid: {steps: [...], global_batch: N}` or `budget: {compute_gmacs: [...]}`",
        )
        if self.sizes:
            check(
                bool(self.grid or self.budget),
                "grid",
                "sizes are listed but there is no grid or budget",
                "add a grid or a budget, or remove `sizes`",
            )

    def _check_sections(self) -> None:
        if self.grid:
            self.grid.validate("grid")
        if self.budget:
            self.budget.validate("budget")
        self.train.validate("train")
        self.data.validate("data")
        self.launch.validate("launch")
        self.cost.validate("cost")
        self.generate.validate("generate")
        self.fit.validate("fit")
        check(
            self.generate.primary_samples <= self.data.heldout_per_pair,
            "generate.primary_samples",
            f"{self.generate.primary_samples} is more than the {self.data.heldout_per_pair} held-out samples "
            "per pair (data.heldout_per_pair)",
            f"raise data.heldout_per_pair to {self.generate.primary_samples}, or lower it",
        )

    def _check_batches(self) -> None:
        for gb_path, gb in self._global_batches():
            per_step = self.train.micro_batch * self.train.world_size
            check(
                gb % per_step == 0,
                gb_path,
                f"global batch {gb} is not divisible by micro_batch × world_size = "
                f"{self.train.micro_batch} × {self.train.world_size} = {per_step}",
                "change the global batch, train.micro_batch or train.world_size so it divides",
            )

    def _check_vocab(self) -> None:
        """Trained tokenizers (at most data.vocab_size ids) must fit what they feed: the target one every
        decoder, the English-only one every encoder. Given directories are sized where they are read."""
        from florenz_scaling.spec.sizes import get_size

        d = self.data
        given = {"decoder": d.tokenizer, "encoder": d.encoder_tokenizer or d.tokenizer}
        parts = [part for part, directory in given.items() if directory is None]
        for name in sorted({*self.sizes, *(r.size for r in self.extra_runs)}):
            for part in parts:
                vocab = getattr(get_size(name), part).vocab
                check(
                    d.vocab_size <= vocab,
                    "data.vocab_size",
                    f"{d.vocab_size} exceeds the {part} vocabulary of size {name} ({vocab})",
                    f"set data.vocab_size <= {vocab}",
                )

    def _check_precision(self) -> None:
        if self.train.precision == "fp16":
            check(
                self.launch.resources.gpus_per_node > 0,
                "train.precision",
                "fp16 needs a GPU but launch.resources.gpus_per_node is 0",
                "use precision auto or fp32 on CPU",
            )

    def _check_components(self) -> None:
        """Components are pretrained on the synthetic world, for tiny sizes only (paper sizes: real ones)."""
        if self.components is None:
            return
        from florenz_scaling.spec.sizes import SEEING_IMAGE_SIZE, get_size

        self.components.validate("components")
        check(
            self.data.kind == "synthetic"
            and self.data.tokenizer is None
            and self.data.encoder_tokenizer is None,
            "components",
            "tiny components are pretrained on the synthetic world with its own tokenizers",
            "remove `components:` (and give real checkpoints under `pretrained:`) or use data.kind synthetic",
        )
        check(
            not self.components.projector_where or self.data.image_size == SEEING_IMAGE_SIZE,
            "components.projector_where",
            f"needs one image token per grid cell, i.e. {SEEING_IMAGE_SIZE}² images (the TS sizes), "
            f"not {self.data.image_size}²",
            f"set data.image_size: {SEEING_IMAGE_SIZE} with TS sizes, or remove projector_where",
        )
        for name in sorted({*self.sizes, *(r.size for r in self.extra_runs)}):
            pre = self.pretrained.get(name)
            covered = (
                pre is not None
                and pre.florence is not None
                and (pre.gemma is not None or get_size(name).family == "florence")
            )
            check(
                get_size(name).tiny or covered,
                "components",
                f"size {name} is not a tiny size, so it cannot be pretrained here",
                f"give its real checkpoints under pretrained.{name}, or remove `components:`",
            )

    def _global_batches(self) -> list[tuple[str, int]]:
        out = []
        if self.grid:
            out.append(("grid.global_batch", self.grid.global_batch))
        if self.budget:
            out.append(("budget.global_batch", self.budget.global_batch))
        for i, r in enumerate(self.extra_runs):
            if r.global_batch is not None:
                out.append((f"extra_runs[{i}].global_batch", r.global_batch))
        return out

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)


@dataclass(frozen=True)
class RunSpec:
    """Everything one training run needs; written as ``runs/<run_id>/run.yaml``."""

    sweep: str = field(metadata=analysis())
    size: str
    steps: int
    global_batch: int
    train: TrainSpec
    data: DataSpec
    wandb: WandbSpec = field(default_factory=WandbSpec, metadata=analysis())
    seed: int = 44595
    pretrained: Pretrained | None = None
    generate: GenerateSpec = field(default_factory=GenerateSpec)
    # WSD sweeps: a run that starts from another run's final checkpoint (a trunk segment continues the
    # previous one, a branch decays from its trunk segment) at step `start_step`; a trunk never decays.
    start_from: str | None = None
    start_step: int = 0
    trunk: bool = False

    @property
    def seen_samples(self) -> int:
        return self.steps * self.global_batch

    @property
    def grad_accum(self) -> int:
        return self.global_batch // (self.train.micro_batch * self.train.world_size)

    @functools.cached_property
    def run_id(self) -> str:
        """Stable id: size, steps and a hash of the spec values that differ from their defaults and determine
        training (``spec.identity``: one rule; the sweep's name and wandb settings are analysis settings).
        A field added with a default changes no id; a run id from before this rule is recognised by
        ``spec.old_runs``."""
        return f"{self.size}-s{self.steps}-{digest(self)}"

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)


def load_sweep(path: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    """Read a sweep YAML, apply ``key=value`` overrides, validate. Raises ``SpecError`` on any problem."""
    if not Path(path).exists():
        raise SpecError(str(path), "sweep file does not exist", "check the path")
    return from_dict(SweepSpec, apply_overrides(read_yaml(path), overrides or []))


def load_run(path: str | Path) -> RunSpec:
    """Read a run's ``run.yaml``."""
    return from_dict(RunSpec, read_yaml(path))
