"""The sections of a sweep spec (grid, budget, train, components, data, cost, wandb, generate, fit) and the
names the whole tool shares: tasks, languages and laws, each defined here once (executors and the launch
section are in ``spec.resources``, re-exported here)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from florenz_scaling.spec.identity import held_out_pairs, identity_by
from florenz_scaling.spec.load import check
from florenz_scaling.spec.resources import EXECUTORS, LaunchSpec, Resources, check_plain_text  # noqa: F401
from florenz_scaling.spec.sizes import SIZES

TASKS = ("caption", "translate")
LANGUAGES = ("en", "de", "fr", "es", "ru", "zh")
# A group name is part of file names (fits/<law>-<group>.json) and of the report's anchors.
GROUP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


# The laws the tool fits, in report order; fit/ maps each to its parameters and fitter.
LAWS = ("compute", "size-data", "chinchilla", "saturating-compute")


@dataclass(frozen=True)
class GridSpec:
    """Sizes × training steps (or × seen samples) at one global batch."""

    steps: tuple[int, ...] = ()
    seen_samples: tuple[int, ...] = ()
    global_batch: int = 1024

    def validate(self, path: str) -> None:
        check(
            bool(self.steps) != bool(self.seen_samples),
            f"{path}.steps",
            "give exactly one of `steps` and `seen_samples`",
            "list training steps (e.g. [500, 2000]) or seen samples, not both and not neither",
        )
        check(self.global_batch > 0, f"{path}.global_batch", "must be positive")
        for i, s in enumerate(self.steps):
            check(s > 0, f"{path}.steps[{i}]", f"must be a positive number of steps, got {s}")
        for i, s in enumerate(self.seen_samples):
            check(
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
        check(
            bool(self.compute_gmacs), f"{path}.compute_gmacs", "is empty", "list at least one budget in GMACs"
        )
        for i, c in enumerate(self.compute_gmacs):
            check(c > 0, f"{path}.compute_gmacs[{i}]", f"must be positive, got {c}")
        check(self.global_batch > 0, f"{path}.global_batch", "must be positive")
        if self.tokens_per_param is not None:
            lo, hi = self.tokens_per_param
            check(
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
    activation_checkpointing: bool = False  # every size; recomputes activations in backward, same result
    activation_checkpointing_sizes: tuple[str, ...] = ()  # or only these sizes (the paper: at 11.2B)
    # wsd: warm-up, constant lr, then a decay over each run's last `decay_fraction` down to min_lr_ratio × lr
    schedule: Literal["cosine", "wsd"] = "cosine"
    decay_fraction: float = 0.2
    decay_shape: Literal["linear", "cosine", "1-sqrt"] = "1-sqrt"  # 1-sqrt beats linear (Hägele et al. 2024)

    def validate(self, path: str) -> None:
        check(self.lr > 0, f"{path}.lr", f"must be positive, got {self.lr}")
        for i, b in enumerate(self.betas):
            check(0 <= b < 1, f"{path}.betas[{i}]", f"must be in [0, 1), got {b}")
        check(self.weight_decay >= 0, f"{path}.weight_decay", "must be >= 0")
        check(self.warmup_steps >= 0, f"{path}.warmup_steps", "must be >= 0")
        check(0 <= self.min_lr_ratio <= 1, f"{path}.min_lr_ratio", "must be in [0, 1]")
        check(self.grad_clip >= 0, f"{path}.grad_clip", "must be >= 0 (0 disables clipping)")
        check(self.micro_batch > 0, f"{path}.micro_batch", "must be positive")
        check(self.world_size > 0, f"{path}.world_size", "must be positive")
        check(
            self.zero_stage in (0, 1, 2, 3),
            f"{path}.zero_stage",
            f"got {self.zero_stage}",
            "use a DeepSpeed ZeRO stage: 0, 1, 2 or 3",
        )
        check(self.eval_every > 0, f"{path}.eval_every", "must be positive")
        check(self.checkpoint_every > 0, f"{path}.checkpoint_every", "must be positive")
        check(self.keep_checkpoints >= 1, f"{path}.keep_checkpoints", "must be >= 1")
        check(0 < self.decay_fraction < 1, f"{path}.decay_fraction", "must be in (0, 1)", "e.g. 0.2")
        for i, size in enumerate(self.activation_checkpointing_sizes):
            check(
                size in SIZES,
                f"{path}.activation_checkpointing_sizes[{i}]",
                f"unknown size {size!r}",
                "name sizes of the registry (florenz-scaling plan lists them), e.g. F-11.2B",
            )

    def checkpoints_activations(self, size: str) -> bool:
        """Whether runs of ``size`` recompute activations in the backward pass instead of keeping them."""
        return self.activation_checkpointing or size in self.activation_checkpointing_sizes


@dataclass(frozen=True)
class Pretrained:
    """Local checkpoints (Hugging Face ``save_pretrained`` layout) a size starts from; never downloaded."""

    florence: str | None = None  # Florence-2: vision tower, projector, encoder (+ BART decoder in BART sizes)
    gemma: str | None = None  # Gemma-2: the decoder of a Gemma size


@dataclass(frozen=True)
class ComponentsSpec:
    """Tiny pretrained components a sweep builds and starts from: the paper's Florence-2 and Gemma-2 in
    miniature (``florenz_scaling.pretrain``). Every size gets them unless ``pretrained:`` names its own.

    Florence-2: stage A (vision tower + projector learn each grid cell's colour, shape, size and count; with
    ``projector_steps`` > 0 the tower learns once, with a probe projector, for every size that has it, and
    each size's projector then learns on the frozen tower for ``projector_steps``), stage B (English
    captioning, tower frozen, encoder + BART decoder trained). Gemma-2 (Gemma sizes): a decoder-only LM on
    text of every language of the world. Cached by a hash of what determines them.
    """

    vision_steps: int = 600
    vision_batch: int = 64
    vision_lr: float = 2e-3
    projector_steps: int = 0  # 0: tower and projector learn together, per size
    # Each size's projector also learns which cell each image token is (96² images, projector_steps > 0),
    # so the tokens keep their position: captions then place objects, at the cost of learning colour later.
    projector_where: bool = False
    caption_steps: int = 1000
    caption_batch: int = 16
    caption_lr: float = 1e-3
    lm_steps: int = 600
    lm_batch: int = 32
    lm_lr: float = 2e-3
    warmup_steps: int = 50
    heldout: int = 64  # held-out scenes for the components' own numbers (accuracy, gap, LM loss)
    seed: int = 0
    # Cache directory; None = $FLORENZ_COMPONENTS_CACHE, else ~/.cache/florenz-scaling/components.
    cache: str | None = None

    def validate(self, path: str) -> None:
        for name in (
            "vision_steps",
            "vision_batch",
            "caption_steps",
            "caption_batch",
            "lm_steps",
            "lm_batch",
            "heldout",
        ):
            check(getattr(self, name) > 0, f"{path}.{name}", "must be positive")
        for name in ("vision_lr", "caption_lr", "lm_lr"):
            check(getattr(self, name) > 0, f"{path}.{name}", "must be positive")
        check(self.warmup_steps >= 0, f"{path}.warmup_steps", "must be >= 0")
        check(self.projector_steps >= 0, f"{path}.projector_steps", "must be >= 0 (0: no shared tower)")
        check(
            not self.projector_where or self.projector_steps > 0,
            f"{path}.projector_where",
            "needs a projector stage of its own",
            f"set {path}.projector_steps > 0, or remove projector_where",
        )
        if self.cache is not None:
            check_plain_text(self.cache, f"{path}.cache")


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
    # A run's identity holds only the pairs they hold out: regrouping them for analysis retrains nothing.
    groups: dict[str, tuple[Pair, ...]] = field(
        default_factory=lambda: {
            "SC": (("caption", "en"), ("caption", "de")),
            "UC": (("caption", "es"), ("caption", "zh")),
            "ST": (("translate", "es"), ("translate", "zh")),
        },
        metadata=identity_by(held_out_pairs),
    )
    decoder_prefix: bool = False  # seed unseen-language captions with "The image shows"-style prefixes
    path: str | None = None  # WebDataset shard pattern or directory, for kind=webdataset
    tokenizer: str | None = None  # local tokenizer directory (e.g. Gemma-2's); None = train one on the corpus
    # The encoder's prompt tokenizer (Florence-2/BART's directory). None: data.tokenizer's when given (one
    # vocabulary), else an English-only BPE trained on the corpus' English text, like BART's.
    encoder_tokenizer: str | None = None
    seed: int = 44595

    def pairs(self) -> tuple[Pair, ...]:
        """Training pairs: captioning in the caption languages, translation en→X."""
        return tuple(("caption", lang) for lang in self.caption_languages) + tuple(
            ("translate", lang) for lang in self.translation_languages
        )

    def validate(self, path: str) -> None:
        for i, lang in enumerate(self.languages):
            check(
                lang in LANGUAGES,
                f"{path}.languages[{i}]",
                f"unknown language {lang!r}",
                f"choose from {', '.join(LANGUAGES)}",
            )
        for name in ("caption_languages", "translation_languages"):
            for i, lang in enumerate(getattr(self, name)):
                check(
                    lang in self.languages,
                    f"{path}.{name}[{i}]",
                    f"language {lang!r} is not in data.languages {list(self.languages)}",
                    f"add it to data.languages or remove it from data.{name}",
                )
        check(
            "en" not in self.translation_languages,
            f"{path}.translation_languages",
            "translation is en→X, so 'en' cannot be a target",
            "remove 'en'",
        )
        check(
            bool(self.pairs()),
            f"{path}.caption_languages",
            "no training pairs at all",
            "give at least one caption or translation language",
        )
        for g, pairs in self.groups.items():
            check(
                GROUP_NAME.fullmatch(g) is not None,
                f"{path}.groups.{g}",
                "is not usable as a group name (it becomes part of file names, e.g. fits/<law>-<group>.json)",
                "use letters, digits, '_' and '-', starting with a letter, e.g. SC or UC_zh",
            )
            check(bool(pairs), f"{path}.groups.{g}", "group is empty", "list at least one [task, language]")
            for i, (task, lang) in enumerate(pairs):
                check(
                    task in TASKS,
                    f"{path}.groups.{g}[{i}]",
                    f"unknown task {task!r}",
                    f"choose from {', '.join(TASKS)}",
                )
                check(
                    lang in self.languages,
                    f"{path}.groups.{g}[{i}]",
                    f"held-out language {lang!r} is not in data.languages",
                    f"add it to data.languages or drop [{task}, {lang}] from the group",
                )
                check(
                    not (task == "translate" and lang == "en"),
                    f"{path}.groups.{g}[{i}]",
                    "there is no en→en translation",
                    "remove it",
                )
        check(
            self.image_size >= 32 and self.image_size % 32 == 0,
            f"{path}.image_size",
            f"{self.image_size} is not a positive multiple of 32 (the vision tower downsamples 32×)",
            "use 32, 64, 224, ...",
        )
        check(self.prompt_len >= 8, f"{path}.prompt_len", "must be >= 8")
        check(self.target_len >= 4, f"{path}.target_len", "must be >= 4")
        check(self.vocab_size >= 256, f"{path}.vocab_size", "must be >= 256")
        check(self.heldout_per_pair > 0, f"{path}.heldout_per_pair", "must be positive")
        if self.kind == "webdataset":
            check(
                bool(self.path),
                f"{path}.path",
                "kind is webdataset but no shard path is given",
                "set data.path to a directory or brace pattern of .tar shards",
            )


@dataclass(frozen=True)
class CostSpec:
    """How GPU-hours are estimated: training FLOPs / (peak × utilisation)."""

    peak_tflops: float = 989.0  # H100 SXM dense bf16
    utilisation: float = 0.35
    gpu: str = "H100"

    def validate(self, path: str) -> None:
        check(self.peak_tflops > 0, f"{path}.peak_tflops", "must be positive")
        check(0 < self.utilisation <= 1, f"{path}.utilisation", f"must be in (0, 1], got {self.utilisation}")


@dataclass(frozen=True)
class WandbSpec:
    mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "florenz-scaling"
    entity: str | None = None


@dataclass(frozen=True)
class GenerateSpec:
    """Decode held-out samples and score what the model says (``train.generate``): metrics.jsonl and
    examples.jsonl in the run directory, at the final step (and at every eval with ``every_eval``)."""

    enabled: bool = True
    beam: int = 4  # the paper's beam width; 1 = greedy only
    greedy: bool = True  # greedy decoding as well as beam search
    prefix: bool = True  # captions seeded with the target language's decoder prefix ("Das Bild zeigt")
    no_prefix: bool = True  # ... and without it
    max_samples: int = 32  # decoded per pair (the first ones of its held-out set)
    # Decoded per caption pair with the paper's primary protocol (beam search + prefix) at each size's
    # largest run (the plan gives its other runs 0), so that the scores' intervals there are narrower than
    # the effects between sizes; 0 = max_samples.
    primary_samples: int = 0
    every_eval: bool = False
    examples: int = 3  # decoded samples kept per pair and decoding in examples.jsonl

    def validate(self, path: str) -> None:
        check(self.beam >= 1, f"{path}.beam", f"must be >= 1, got {self.beam}")
        check(self.greedy or self.beam > 1, f"{path}.greedy", "no decoding left", "set greedy or beam > 1")
        check(
            self.prefix or self.no_prefix,
            f"{path}.prefix",
            "neither prefix nor no_prefix",
            "set at least one of them",
        )
        check(self.max_samples > 0, f"{path}.max_samples", "must be positive")
        check(self.primary_samples >= 0, f"{path}.primary_samples", "must be >= 0 (0: max_samples)")
        check(self.examples >= 0, f"{path}.examples", "must be >= 0")


@dataclass(frozen=True)
class FitSpec:
    # The laws ``run`` fits, in report order: names of the built-in LAWS, or a mapping of name -> the law
    # written out as in a --laws file (expr, params, response; checked by spec.lawtext) or null (a built-in).
    laws: tuple[str, ...] | dict[str, dict[str, Any] | None] = LAWS
    bootstrap: int = 1000  # resamples of runs, as fitting.md recommends
    per_pair: bool = False

    @property
    def law_names(self) -> tuple[str, ...]:
        return tuple(self.laws)

    @property
    def written_laws(self) -> dict[str, dict[str, Any]]:
        """The laws written out in the sweep (name -> definition), registered by the fit stage."""
        return {k: v for k, v in self.laws.items() if v is not None} if isinstance(self.laws, dict) else {}

    def validate(self, path: str) -> None:
        from florenz_scaling.spec.lawtext import check_law

        written = self.written_laws
        for i, name in enumerate(self.law_names):
            where = f"{path}.laws.{name}" if isinstance(self.laws, dict) else f"{path}.laws[{i}]"
            if name not in written:
                fix = f"choose from {', '.join(LAWS)}, or write it out: `{name}: {{expr: ..., params: ...}}`"
                check(name in LAWS, where, f"unknown law {name!r}", fix)
                continue
            # The name is part of file names (fits/<law>-<group>.json) and of the report's anchors.
            ok = GROUP_NAME.fullmatch(name) is not None
            check(ok, where, f"{name!r} cannot name a law", "letters, digits, - and _, from a letter")
            check(name not in LAWS, where, f"{name!r} is a built-in law", "give the written law another name")
            check_law(where, name, written[name])
        check(self.bootstrap >= 0, f"{path}.bootstrap", f"must be >= 0, got {self.bootstrap}")
