"""Which tiny components a sweep needs, what determines each one, and where the cache keeps them (no torch).

A component is named ``<kind>-<hash>``, the hash being SHA-1 of the JSON of everything that determines its
weights: the architecture of the parts it trains, the recipe's knobs, the bytes (by SHA-1) of the tokenizer
it reads (a ``florence`` component the encoder's: Florence-2 has one vocabulary for prompts and captions; a
``gemma`` component the target one), the image size and the format version below.

Sizes with the same vision tower and projection share one ``vision`` component (stage A). With
``projector_steps`` > 0, sizes with the same tower share one ``tower`` component (the tower learnt once, with
a probe projector of the tower's own width), and each projection width gets a ``vision`` component that learns
its projector on that frozen tower. Sizes with the same tower, encoder and BART decoder share one ``florence``
component (stage B); sizes with the same Gemma decoder share one ``gemma`` component.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from florenz_scaling.spec.sections import ComponentsSpec, DataSpec
from florenz_scaling.spec.sizes import BartConfigLite, GemmaConfigLite, SizeConfig, get_size

# Bump when a recipe changes in a way that alters the weights, so cached components are rebuilt.
# 2: florence components use the encoder's (English-only) tokenizer; 3: stage A's fan-in tower init, weighted
# attribute loss and per-cell head.
COMPONENTS_FORMAT_VERSION = 3
CACHE_ENV = "FLORENZ_COMPONENTS_CACHE"
DEFAULT_CACHE = Path("~/.cache/florenz-scaling/components")
DONE_FILE = "component.json"  # written last: a directory without it is not a component

Kind = Literal["tower", "vision", "florence", "gemma"]


@dataclass(frozen=True)
class Component:
    """One buildable component: its kind, the JSON of what determines it, and the component it starts from."""

    kind: Kind
    config: str  # canonical JSON (sort_keys) of the identity; see the module docstring
    needs: Component | None = None  # florence starts from its vision component, vision from its tower

    @functools.cached_property
    def hash(self) -> str:
        return hashlib.sha1(self.config.encode()).hexdigest()[:12]

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.hash}"

    @property
    def spec(self) -> dict[str, Any]:
        """The identity as a dict (what ``component.json`` records as ``spec``)."""
        return json.loads(self.config)

    @property
    def cost(self) -> float:
        """A rough relative cost (trained width² × layers × steps × batch), to start long builds first."""
        s = self.spec
        return float(s["cost"])


def cache_dir(components: ComponentsSpec | None = None, override: str | Path | None = None) -> Path:
    """The cache: ``override``, else ``components.cache``, else ``$FLORENZ_COMPONENTS_CACHE``, else
    ``~/.cache/florenz-scaling/components`` (outside any sweep directory, so deleting a sweep keeps it)."""
    chosen = override or (components.cache if components else None) or os.environ.get(CACHE_ENV)
    return Path(chosen or DEFAULT_CACHE).expanduser().resolve()


def _identity(kind: str, recipe: dict[str, Any], cost: float, **parts: Any) -> str:
    return json.dumps(
        {"format": COMPONENTS_FORMAT_VERSION, "kind": kind, "recipe": recipe, "cost": cost, **parts},
        sort_keys=True,
    )


def florence_decoder(size: SizeConfig) -> BartConfigLite:
    """The BART decoder a size's Florence component is captioned with: its own, or for Gemma sizes one the
    shape of its encoder (Florence-2's decoder, which a Gemma size does not load)."""
    if isinstance(size.decoder, BartConfigLite):
        return size.decoder
    return size.encoder


def _vision_recipe(c: ComponentsSpec, steps: int) -> dict[str, Any]:
    return {
        "steps": steps,
        "batch": c.vision_batch,
        "lr": c.vision_lr,
        "warmup": c.warmup_steps,
        "seed": c.seed,
    }


def tower_component(size: SizeConfig, c: ComponentsSpec, data: DataSpec) -> Component:
    """Stage A for ``size``'s tower alone (its projection width left out: every width shares it)."""
    tower = dataclasses.asdict(dataclasses.replace(size.vision, projection_dim=0))
    width = size.vision.embed_dim[-1]
    cost = width * width * c.vision_steps * c.vision_batch * 4
    recipe = _vision_recipe(c, c.vision_steps)
    return Component("tower", _identity("tower", recipe, cost, tower=tower, image_size=data.image_size))


def vision_component(size: SizeConfig, c: ComponentsSpec, data: DataSpec) -> Component:
    """Stage A for ``size``'s vision tower and projector: both at once, or (``projector_steps`` > 0) the
    projector on the frozen shared tower."""
    width = size.vision.embed_dim[-1]
    vision = dataclasses.asdict(size.vision)
    if c.projector_steps == 0:
        recipe = _vision_recipe(c, c.vision_steps)
        cost = width * width * c.vision_steps * c.vision_batch * 4
        return Component(
            "vision", _identity("vision", recipe, cost, vision=vision, image_size=data.image_size)
        )
    tower = tower_component(size, c, data)
    recipe = _vision_recipe(c, c.projector_steps)
    if c.projector_where:  # only then: the default recipe's hash (and so the cache) stays as it was
        recipe["where"] = True
    cost = width * width * c.projector_steps * c.vision_batch
    ident = _identity("vision", recipe, cost, vision=vision, tower=tower.hash, image_size=data.image_size)
    return Component("vision", ident, needs=tower)


def florence_component(
    size: SizeConfig, c: ComponentsSpec, data: DataSpec, encoder_tokenizer_sha1: str
) -> Component:
    """Stage B for ``size``: English captioning from the stage-A tower (frozen), encoder + BART decoder, in
    the encoder tokenizer's vocabulary (``encoder_tokenizer_sha1``: SHA-1 of its ``tokenizer.json``)."""
    dec = florence_decoder(size)
    recipe = {
        "steps": c.caption_steps,
        "batch": c.caption_batch,
        "lr": c.caption_lr,
        "warmup": c.warmup_steps,
        "seed": c.seed,
    }
    text = {
        "encoder_tokenizer_sha1": encoder_tokenizer_sha1,
        "prompt_len": data.prompt_len,
        "target_len": data.target_len,
        "decoder_prefix": data.decoder_prefix,
    }
    cost = (
        (
            size.encoder.d_model**2 * (size.encoder.layers + dec.layers) * 12
            + size.vision.embed_dim[-1] ** 2 * 4
        )
        * c.caption_steps
        * c.caption_batch
        * 6
    )
    vision = vision_component(size, c, data)
    ident = _identity(
        "florence",
        recipe,
        cost,
        vision=vision.hash,
        encoder=dataclasses.asdict(size.encoder),
        decoder=dataclasses.asdict(dec),
        text=text,
        image_size=data.image_size,
    )
    return Component("florence", ident, needs=vision)


def gemma_component(size: SizeConfig, c: ComponentsSpec, data: DataSpec, tokenizer_sha1: str) -> Component:
    """The decoder-only Gemma-2 LM of a Gemma size, on text of every language of the world."""
    assert isinstance(size.decoder, GemmaConfigLite)
    g = size.decoder
    recipe = {
        "steps": c.lm_steps,
        "batch": c.lm_batch,
        "lr": c.lm_lr,
        "warmup": c.warmup_steps,
        "seed": c.seed,
    }
    text = {
        "tokenizer_sha1": tokenizer_sha1,
        "languages": list(data.languages),
        "target_len": data.target_len,
    }
    cost = g.hidden**2 * g.layers * 12 * c.lm_steps * c.lm_batch
    return Component("gemma", _identity("gemma", recipe, cost, decoder=dataclasses.asdict(g), text=text))


def dependencies(comp: Component) -> list[Component]:
    """What ``comp`` starts from, nearest first (a florence component: its vision, then its tower)."""
    out = []
    while comp.needs is not None:
        comp = comp.needs
        out.append(comp)
    return out


@dataclass(frozen=True)
class ComponentPlan:
    """The components a sweep needs (each once, in build order: a component after the one it needs) and,
    per size, which component fills which ``pretrained`` field."""

    components: tuple[Component, ...]
    by_size: dict[str, dict[str, Component]]  # size -> {"florence": c, "gemma": c}


def plan_components(
    sizes: list[str],
    explicit: dict[str, Any],
    c: ComponentsSpec,
    data: DataSpec,
    tokenizer_sha1: str,
    encoder_tokenizer_sha1: str,
) -> ComponentPlan:
    """The plan for ``sizes``; a field a size's ``explicit`` ``Pretrained`` already names is not built.
    ``tokenizer_sha1`` identifies the target tokenizer (Gemma components), ``encoder_tokenizer_sha1`` the
    encoder's (Florence components)."""
    ordered: dict[str, Component] = {}
    by_size: dict[str, dict[str, Component]] = {}
    for name in sizes:
        size = get_size(name)
        pre = explicit.get(name)
        want: dict[str, Component] = {}
        if pre is None or pre.florence is None:
            want["florence"] = florence_component(size, c, data, encoder_tokenizer_sha1)
        if isinstance(size.decoder, GemmaConfigLite) and (pre is None or pre.gemma is None):
            want["gemma"] = gemma_component(size, c, data, tokenizer_sha1)
        for comp in want.values():
            for dep in reversed(dependencies(comp)):
                ordered.setdefault(dep.name, dep)
            ordered.setdefault(comp.name, comp)
        if want:
            by_size[name] = want
    return ComponentPlan(tuple(ordered.values()), by_size)
