"""Frozen, typed sweep specifications loaded from YAML with dotted command-line overrides.

One config tree (``SweepSpec``) is merged once at the entry point: YAML file, then ``-o key=value`` overrides,
then validation. Unknown keys, wrong types and inconsistent values raise ``SpecError`` naming the field and
the fix, before anything is planned or submitted.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import types
import typing
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

TASKS = ("caption", "translate")
LANGUAGES = ("en", "de", "fr", "es", "ru", "zh")


class SpecError(ValueError):
    """A sweep specification is wrong; the message names the field and what would fix it."""

    def __init__(self, field_path: str, problem: str, fix: str = "") -> None:
        self.field_path = field_path
        msg = f"{field_path or '<root>'}: {problem}"
        if fix:
            msg += f" — fix: {fix}"
        super().__init__(msg)


def _check(cond: bool, field_path: str, problem: str, fix: str = "") -> None:
    if not cond:
        raise SpecError(field_path, problem, fix)


@dataclass(frozen=True)
class GridSpec:
    """Sizes × training steps (or × seen samples) at one global batch."""

    steps: tuple[int, ...] = ()
    seen_samples: tuple[int, ...] = ()
    global_batch: int = 1024

    def validate(self, path: str) -> None:
        _check(
            bool(self.steps) != bool(self.seen_samples),
            f"{path}.steps",
            "give exactly one of `steps` and `seen_samples`",
            "list training steps (e.g. [500, 2000]) or seen samples, not both and not neither",
        )
        _check(self.global_batch > 0, f"{path}.global_batch", "must be positive")
        for i, s in enumerate(self.steps):
            _check(s > 0, f"{path}.steps[{i}]", f"must be a positive number of steps, got {s}")
        for i, s in enumerate(self.seen_samples):
            _check(
                s >= self.global_batch,
                f"{path}.seen_samples[{i}]",
                f"{s} is smaller than one global batch ({self.global_batch})",
                "raise it or lower grid.global_batch",
            )


@dataclass(frozen=True)
class BudgetSpec:
    """Compute-budget mode: for each budget C (GMACs) and size, the seen samples that spend it."""

    compute_gmacs: tuple[float, ...] = ()
    global_batch: int = 1024
    # Keep only the (size, budget) pairs whose decoder tokens per parameter fall inside [low, high].
    tokens_per_param: tuple[float, float] | None = None

    def validate(self, path: str) -> None:
        _check(
            bool(self.compute_gmacs), f"{path}.compute_gmacs", "is empty", "list at least one budget in GMACs"
        )
        for i, c in enumerate(self.compute_gmacs):
            _check(c > 0, f"{path}.compute_gmacs[{i}]", f"must be positive, got {c}")
        _check(self.global_batch > 0, f"{path}.global_batch", "must be positive")
        if self.tokens_per_param is not None:
            lo, hi = self.tokens_per_param
            _check(
                0 <= lo < hi,
                f"{path}.tokens_per_param",
                f"window [{lo}, {hi}] is empty",
                "give [low, high] with 0 <= low < high",
            )


@dataclass(frozen=True)
class ExtraRun:
    size: str
    steps: int
    global_batch: int | None = None


@dataclass(frozen=True)
class TrainSpec:
    """Optimisation hyper-parameters; defaults are the paper's pre-training values (§3)."""

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0
    micro_batch: int = 32
    world_size: int = 1
    zero_stage: int = 0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    eval_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    threads: int = 0  # torch intra-op threads on CPU; 0 = torch's default
    activation_checkpointing: bool = False

    def validate(self, path: str) -> None:
        _check(self.lr > 0, f"{path}.lr", f"must be positive, got {self.lr}")
        for i, b in enumerate(self.betas):
            _check(0 <= b < 1, f"{path}.betas[{i}]", f"must be in [0, 1), got {b}")
        _check(self.weight_decay >= 0, f"{path}.weight_decay", "must be >= 0")
        _check(self.warmup_steps >= 0, f"{path}.warmup_steps", "must be >= 0")
        _check(0 <= self.min_lr_ratio <= 1, f"{path}.min_lr_ratio", "must be in [0, 1]")
        _check(self.grad_clip >= 0, f"{path}.grad_clip", "must be >= 0 (0 disables clipping)")
        _check(self.micro_batch > 0, f"{path}.micro_batch", "must be positive")
        _check(self.world_size > 0, f"{path}.world_size", "must be positive")
        _check(
            self.zero_stage in (0, 1, 2, 3),
            f"{path}.zero_stage",
            f"got {self.zero_stage}",
            "use a DeepSpeed ZeRO stage: 0, 1, 2 or 3",
        )
        _check(self.eval_every > 0, f"{path}.eval_every", "must be positive")
        _check(self.checkpoint_every > 0, f"{path}.checkpoint_every", "must be positive")
        _check(self.keep_checkpoints >= 1, f"{path}.keep_checkpoints", "must be >= 1")


@dataclass(frozen=True)
class Pretrained:
    """Local checkpoints (Hugging Face ``save_pretrained`` layout) a size starts from; never downloaded."""

    florence: str | None = None  # Florence-2: vision tower, projector, encoder (+ BART decoder in BART sizes)
    gemma: str | None = None  # Gemma-2: the decoder of a Gemma size


Pair = tuple[str, str]  # (task, language)


@dataclass(frozen=True)
class DataSpec:
    """The synthetic multilingual world (or local WebDataset shards) and its task-language coverage."""

    kind: Literal["synthetic", "webdataset"] = "synthetic"
    languages: tuple[str, ...] = LANGUAGES
    caption_languages: tuple[str, ...] = ("en", "de")
    translation_languages: tuple[str, ...] = ("de", "fr", "es", "ru", "zh")  # en -> X
    image_size: int = 64
    # Long enough for the synthetic world's translation prompts (max 41 tokens) and targets (max 34).
    prompt_len: int = 48
    target_len: int = 40
    vocab_size: int = 1024
    heldout_per_pair: int = 64
    # Evaluation groups as in the paper: SC seen captioning, UC unseen captioning, ST seen translation.
    groups: dict[str, tuple[Pair, ...]] = field(
        default_factory=lambda: {
            "SC": (("caption", "en"), ("caption", "de")),
            "UC": (("caption", "es"), ("caption", "zh")),
            "ST": (("translate", "es"), ("translate", "zh")),
        }
    )
    decoder_prefix: bool = False  # seed unseen-language captions with "The image shows"-style prefixes
    path: str | None = None  # WebDataset shard pattern or directory, for kind=webdataset
    tokenizer: str | None = None  # local tokenizer directory (e.g. Gemma-2's); None = train one on the corpus
    seed: int = 44595

    def pairs(self) -> tuple[Pair, ...]:
        """Training pairs: captioning in the caption languages, translation en→X."""
        return tuple(("caption", lang) for lang in self.caption_languages) + tuple(
            ("translate", lang) for lang in self.translation_languages
        )

    def validate(self, path: str) -> None:
        for i, lang in enumerate(self.languages):
            _check(
                lang in LANGUAGES,
                f"{path}.languages[{i}]",
                f"unknown language {lang!r}",
                f"choose from {', '.join(LANGUAGES)}",
            )
        for name in ("caption_languages", "translation_languages"):
            for i, lang in enumerate(getattr(self, name)):
                _check(
                    lang in self.languages,
                    f"{path}.{name}[{i}]",
                    f"language {lang!r} is not in data.languages {list(self.languages)}",
                    f"add it to data.languages or remove it from data.{name}",
                )
        _check(
            "en" not in self.translation_languages,
            f"{path}.translation_languages",
            "translation is en→X, so 'en' cannot be a target",
            "remove 'en'",
        )
        _check(
            bool(self.pairs()),
            f"{path}.caption_languages",
            "no training pairs at all",
            "give at least one caption or translation language",
        )
        for g, pairs in self.groups.items():
            _check(bool(pairs), f"{path}.groups.{g}", "group is empty", "list at least one [task, language]")
            for i, (task, lang) in enumerate(pairs):
                _check(
                    task in TASKS,
                    f"{path}.groups.{g}[{i}]",
                    f"unknown task {task!r}",
                    f"choose from {', '.join(TASKS)}",
                )
                _check(
                    lang in self.languages,
                    f"{path}.groups.{g}[{i}]",
                    f"held-out language {lang!r} is not in data.languages",
                    f"add it to data.languages or drop [{task}, {lang}] from the group",
                )
                _check(
                    not (task == "translate" and lang == "en"),
                    f"{path}.groups.{g}[{i}]",
                    "there is no en→en translation",
                    "remove it",
                )
        _check(
            self.image_size >= 32 and self.image_size % 32 == 0,
            f"{path}.image_size",
            f"{self.image_size} is not a positive multiple of 32 (the vision tower downsamples 32×)",
            "use 32, 64, 224, ...",
        )
        _check(self.prompt_len >= 8, f"{path}.prompt_len", "must be >= 8")
        _check(self.target_len >= 4, f"{path}.target_len", "must be >= 4")
        _check(self.vocab_size >= 256, f"{path}.vocab_size", "must be >= 256")
        _check(self.heldout_per_pair > 0, f"{path}.heldout_per_pair", "must be positive")
        if self.kind == "webdataset":
            _check(
                bool(self.path),
                f"{path}.path",
                "kind is webdataset but no shard path is given",
                "set data.path to a directory or brace pattern of .tar shards",
            )


@dataclass(frozen=True)
class Resources:
    """SLURM resources for one run; every field may be overridden per size."""

    nodes: int = 1
    gpus_per_node: int = 0
    tasks_per_node: int = 1
    cpus_per_task: int = 1
    mem_gb: float = 4.0
    timeout_min: int = 60
    partition: str | None = None
    account: str | None = None
    constraint: str | None = None
    additional: dict[str, str] = field(default_factory=dict)  # extra sbatch options, e.g. {qos: high}

    def validate(self, path: str) -> None:
        for name in ("nodes", "tasks_per_node", "cpus_per_task", "timeout_min"):
            _check(getattr(self, name) > 0, f"{path}.{name}", "must be positive")
        _check(self.gpus_per_node >= 0, f"{path}.gpus_per_node", "must be >= 0")
        _check(self.mem_gb > 0, f"{path}.mem_gb", "must be positive")


@dataclass(frozen=True)
class LaunchSpec:
    executor: Literal["auto", "local", "slurm", "debug"] = "auto"
    array_parallelism: int = 4
    resources: Resources = field(default_factory=Resources)
    per_size: dict[str, dict[str, Any]] = field(default_factory=dict)  # size -> Resources field overrides
    max_requeues: int = 3

    def resources_for(self, size: str) -> Resources:
        return dataclasses.replace(self.resources, **self.per_size.get(size, {}))

    def validate(self, path: str) -> None:
        _check(self.array_parallelism > 0, f"{path}.array_parallelism", "must be positive")
        self.resources.validate(f"{path}.resources")
        valid = {f.name for f in dataclasses.fields(Resources)}
        for size, over in self.per_size.items():
            for key in over:
                _check(
                    key in valid,
                    f"{path}.per_size.{size}.{key}",
                    "unknown resource field",
                    f"use one of {', '.join(sorted(valid))}",
                )
            try:
                res = from_dict(
                    Resources, {**dataclasses.asdict(self.resources), **over}, f"{path}.per_size.{size}"
                )
            except SpecError:
                raise
            res.validate(f"{path}.per_size.{size}")


@dataclass(frozen=True)
class CostSpec:
    """How GPU-hours are estimated: training FLOPs / (peak × utilisation)."""

    peak_tflops: float = 989.0  # H100 SXM dense bf16
    utilisation: float = 0.35
    gpu: str = "H100"

    def validate(self, path: str) -> None:
        _check(self.peak_tflops > 0, f"{path}.peak_tflops", "must be positive")
        _check(0 < self.utilisation <= 1, f"{path}.utilisation", f"must be in (0, 1], got {self.utilisation}")


@dataclass(frozen=True)
class WandbSpec:
    mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "florenz-scaling"
    entity: str | None = None


@dataclass(frozen=True)
class FitSpec:
    laws: tuple[str, ...] = ("compute", "size-data", "chinchilla", "saturating-compute")
    bootstrap: int = 1000  # resamples of runs, as fitting.md recommends
    per_pair: bool = False


LAWS = ("compute", "size-data", "chinchilla", "saturating-compute")


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
    pretrained: dict[str, Pretrained] = field(default_factory=dict)  # size -> checkpoints; else random init
    seed: int = 44595

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        from florenz_scaling.sizes import SIZES  # the registry only knows names; no torch

        _check(
            bool(self.name) and self.name.replace("-", "").replace("_", "").isalnum(),
            "name",
            f"{self.name!r} is not a plain name",
            "use letters, digits, '-' and '_'",
        )
        _check(
            bool(self.sizes) or bool(self.extra_runs),
            "sizes",
            "no sizes and no extra runs",
            "list model sizes, e.g. [T-1M, T-4M]",
        )
        for i, s in enumerate(self.sizes):
            _check(s in SIZES, f"sizes[{i}]", f"unknown size {s!r}", f"choose from {', '.join(SIZES)}")
        _check(len(set(self.sizes)) == len(self.sizes), "sizes", "a size is listed twice", "list each once")
        _check(
            not (self.grid and self.budget),
            "budget",
            "both grid and budget are given",
            "a sweep is either a grid or a compute-budget sweep; remove one",
        )
        _check(
            bool(self.grid or self.budget or self.extra_runs),
            "grid",
            "no grid, budget or extra runs",
            "add `grid: {steps: [...], global_batch: N}` or `budget: {compute_gmacs: [...]}`",
        )
        if self.sizes:
            _check(
                bool(self.grid or self.budget),
                "grid",
                "sizes are listed but there is no grid or budget",
                "add a grid or a budget, or remove `sizes`",
            )
        if self.grid:
            self.grid.validate("grid")
        if self.budget:
            self.budget.validate("budget")
        for i, r in enumerate(self.extra_runs):
            _check(
                r.size in SIZES,
                f"extra_runs[{i}].size",
                f"unknown size {r.size!r}",
                f"choose from {', '.join(SIZES)}",
            )
            _check(r.steps > 0, f"extra_runs[{i}].steps", "must be positive")
        self.train.validate("train")
        self.data.validate("data")
        self.launch.validate("launch")
        self.cost.validate("cost")
        for i, law in enumerate(self.fit.laws):
            _check(law in LAWS, f"fit.laws[{i}]", f"unknown law {law!r}", f"choose from {', '.join(LAWS)}")
        for size in self.launch.per_size:
            _check(
                size in SIZES, f"launch.per_size.{size}", "unknown size", f"choose from {', '.join(SIZES)}"
            )
        for size, pre in self.pretrained.items():
            _check(size in SIZES, f"pretrained.{size}", "unknown size", f"choose from {', '.join(SIZES)}")
            if pre.gemma is not None:
                from florenz_scaling.sizes import GemmaConfigLite

                _check(
                    isinstance(SIZES[size].decoder, GemmaConfigLite),
                    f"pretrained.{size}.gemma",
                    f"size {size} has a BART decoder, so a Gemma-2 checkpoint does not apply",
                    "remove it, or give it to a Gemma size ("
                    + ", ".join(n for n, c in SIZES.items() if isinstance(c.decoder, GemmaConfigLite)) + ")",
                )
        for gb_path, gb in self._global_batches():
            per_step = self.train.micro_batch * self.train.world_size
            _check(
                gb % per_step == 0,
                gb_path,
                f"global batch {gb} is not divisible by micro_batch × world_size = "
                f"{self.train.micro_batch} × {self.train.world_size} = {per_step}",
                "change the global batch, train.micro_batch or train.world_size so it divides",
            )
        if self.data.kind == "synthetic" and self.data.tokenizer is None:
            from florenz_scaling.sizes import get_size

            for name in {*self.sizes, *(r.size for r in self.extra_runs)}:
                vocab = get_size(name).decoder.vocab
                _check(
                    self.data.vocab_size <= vocab,
                    "data.vocab_size",
                    f"{self.data.vocab_size} exceeds the decoder vocabulary of size {name} ({vocab})",
                    f"set data.vocab_size <= {vocab}",
                )
        if self.train.precision == "fp16":
            _check(
                self.launch.resources.gpus_per_node > 0,
                "train.precision",
                "fp16 needs a GPU but launch.resources.gpus_per_node is 0",
                "use precision auto or fp32 on CPU",
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

    sweep: str
    size: str
    steps: int
    global_batch: int
    train: TrainSpec
    data: DataSpec
    wandb: WandbSpec = field(default_factory=WandbSpec)
    seed: int = 44595
    pretrained: Pretrained | None = None

    @property
    def seen_samples(self) -> int:
        return self.steps * self.global_batch

    @property
    def grad_accum(self) -> int:
        return self.global_batch // (self.train.micro_batch * self.train.world_size)

    @functools.cached_property
    def run_id(self) -> str:
        """Stable id: a hash of what determines the run's result (not the sweep's name or wandb settings).

        The hashed text is ``json.dumps(ident, sort_keys=True)`` of the plain run spec without those
        fields, assembled from per-field JSON so the train and data specs a sweep's runs share are
        serialised once.
        """
        parts = []
        for f in sorted(f.name for f in dataclasses.fields(self) if f.name not in ("sweep", "wandb")):
            value = getattr(self, f)
            if f == "pretrained" and value is None:
                continue  # a from-scratch run keeps the id it had before checkpoints could be named
            text = _spec_json(value) if dataclasses.is_dataclass(value) else json.dumps(value, sort_keys=True)
            parts.append(f"{json.dumps(f)}: {text}")
        digest = hashlib.sha1(("{" + ", ".join(parts) + "}").encode()).hexdigest()[:10]
        return f"{self.size}-s{self.steps}-{digest}"

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)


# ---------------------------------------------------------------------------------------------------------
# Generic typed loading: plain dicts (from YAML) -> frozen dataclasses, with field paths in every error.


_SPEC_JSON: dict[int, tuple[weakref.ref, str]] = {}


def _spec_json(spec: Any) -> str:
    """JSON of a frozen sub-spec, cached per object (by identity: specs holding dicts are unhashable)."""
    hit = _SPEC_JSON.get(id(spec))
    if hit is not None and hit[0]() is spec:
        return hit[1]
    text = json.dumps(to_plain(spec), sort_keys=True)
    if len(_SPEC_JSON) > 256:
        _SPEC_JSON.clear()
    _SPEC_JSON[id(spec)] = (weakref.ref(spec), text)
    return text


def to_plain(obj: Any) -> Any:
    """Dataclasses/tuples -> dicts/lists, suitable for YAML and JSON."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path)
            except SpecError as e:
                errors.append(e)
        raise (
            errors[0] if len(errors) == 1 else SpecError(path, f"{value!r} matches none of {_type_name(tp)}")
        )
    if origin is Literal:
        _check(value in args, path, f"{value!r} is not allowed", f"use one of {', '.join(map(str, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        _check(
            isinstance(value, dict),
            path,
            f"expected a mapping, got {type(value).__name__}",
            f"write `{path.rsplit('.', 1)[-1]}:` followed by indented keys",
        )
        return from_dict(tp, value, path)
    if origin is tuple:
        _check(isinstance(value, (list, tuple)), path, f"expected a list, got {value!r}", "write [a, b, ...]")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        _check(len(value) == len(args), path, f"expected {len(args)} items, got {len(value)}")
        return tuple(_convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        _check(isinstance(value, dict), path, f"expected a mapping, got {value!r}")
        return {str(k): _convert(args[1], v, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        _check(isinstance(value, bool), path, f"expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        _check(
            isinstance(value, int) and not isinstance(value, bool),
            path,
            f"expected an integer, got {value!r}",
            "write a whole number, e.g. 1024",
        )
        return value
    if tp is float:
        if isinstance(value, str):
            try:
                value = float(value)  # YAML reads 1e-4 (no dot) as a string
            except ValueError:
                pass
        _check(
            isinstance(value, (int, float)) and not isinstance(value, bool),
            path,
            f"expected a number, got {value!r}",
            "write e.g. 1e-4 or 0.01",
        )
        return float(value)
    if tp is str:
        _check(isinstance(value, str), path, f"expected a string, got {value!r}")
        return value
    raise SpecError(path, f"unsupported type {_type_name(tp)}")


def from_dict(cls: type, data: dict[str, Any], path: str = "") -> Any:
    """Build dataclass ``cls`` from a plain dict; unknown keys and wrong types are ``SpecError``s."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{path}." if path else ""
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(fields)}"
            raise SpecError(f"{prefix}{key}", "unknown key", hint)
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], f"{prefix}{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SpecError(f"{prefix}{name}", "is required", f"add `{name}:` to the spec")
    try:
        return cls(**kwargs)
    except SpecError as e:
        if path and not e.field_path.startswith(path):
            raise SpecError(f"{prefix}{e.field_path}", str(e).split(": ", 1)[1]) from None
        raise


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.lr=2e-4`` -> (["train", "lr"], 2e-4). Values are parsed as YAML."""
    if "=" not in text:
        raise SpecError(text, "override has no '='", "write key.path=value, e.g. -o train.lr=2e-4")
    key, raw = text.split("=", 1)
    keys = key.strip().split(".")
    if not all(keys):
        raise SpecError(key, "empty key in override", "write key.path=value")
    return keys, yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (copying it); typos surface as unknown keys at load."""
    import copy

    out = copy.deepcopy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for i, k in enumerate(keys[:-1]):
            nxt = node.get(k)
            if nxt is None:
                nxt = node[k] = {}
            if not isinstance(nxt, dict):
                raise SpecError(".".join(keys[: i + 1]), "is not a mapping, cannot set a key inside it")
            node = nxt
        node[keys[-1]] = value
    return out


def load_sweep(path: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    """Read a sweep YAML, apply ``key=value`` overrides, validate. Raises ``SpecError`` on any problem."""
    path = Path(path)
    if not path.exists():
        raise SpecError(str(path), "sweep file does not exist", "check the path")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise SpecError(str(path), f"is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise SpecError(str(path), "top level must be a mapping")
    data = apply_overrides(data, overrides or [])
    return from_dict(SweepSpec, data)


def load_run(path: str | Path) -> RunSpec:
    """Read a run's ``run.yaml``."""
    data = yaml.safe_load(Path(path).read_text())
    return from_dict(RunSpec, data)


def dump_yaml(obj: Any, path: str | Path) -> None:
    """Write a spec (dataclass) as YAML atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(to_plain(obj), sort_keys=False))
    tmp.replace(path)
