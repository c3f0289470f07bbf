"""Stage A: the vision tower and projector learn the scene's attributes from pixels.

A linear head on the projector's image tokens predicts, for each of the 9 grid cells, the colour, shape, size
and count of the object there (class 0 = empty). When the tower's last map has one token per cell (96² images
at total stride 32) the head is one linear layer shared by the cells, reading the cell's token and the mean
token; otherwise one linear layer reads all tokens. The loss is the cross-entropy over cells, per attribute,
weighted (shape, the hardest, 3×). The tower starts from a fan-in initialisation: Hugging Face's std 0.02 for
every layer is far too small for 12–96-channel convolutions, and with it colour and shape stay at chance
(measured, ``../shared/reference/grounding.md`` §4). The head is dropped afterwards: only ``vision_tower.*``
and ``multi_modal_projector.*`` are kept (``vision.safetensors``), for stage B to start from and freeze.

A head shared by the cells has no use for where a token is, so the projector learns to project position out:
cell identity ends as 1–2% of an image token's variance (``position_share`` in ``component.json``), and
captions then name the right object at a wrong place. The recipe's ``where`` (``components.projector_where``)
adds a cell head to the projector stage and starts the 2D position embedding at the tower features' scale:
tokens keep position (0.68 of their variance, measured on the demo's tower), at the cost of content.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from florenz_scaling.data.attributes import ATTRIBUTES, CELLS, attribute_batch
from florenz_scaling.data.collate import normalise_images
from florenz_scaling.data.world import Scene, render
from florenz_scaling.model.florenz import FlorenzModel, build_model, vision_modules
from florenz_scaling.pretrain.loop import heldout_scenes, scenes, tensors_to_cpu, train_loop
from florenz_scaling.spec.sizes import SizeConfig, VisionConfig

VISION_FILE = "vision.safetensors"
TOWER_FILE = "tower.safetensors"
VISION_PREFIXES = ("vision_tower.", "multi_modal_projector.")
_CLASSES = tuple(ATTRIBUTES.values())
# Loss weight per attribute (ATTRIBUTES order): shape is learnt last, so it gets more of the gradient.
ATTRIBUTE_WEIGHTS = (1.0, 3.0, 1.0, 1.0)


def fan_in_init(tower: nn.Module) -> None:
    """Truncated-normal weights of std fan_in^-1/2 (±2 std) and zero biases for every linear and conv."""
    for m in tower.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            std = m.weight[0].numel() ** -0.5
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class AttributeProbe(nn.Module):
    """Tower → projector → image tokens → a linear head → per cell, logits of each attribute."""

    def __init__(
        self, tower: nn.Module, projector: nn.Module, d: int, image_size: int, where: bool = False
    ) -> None:
        super().__init__()
        self.vision_tower, self.multi_modal_projector = tower, projector
        cells = (image_size // 32) ** 2
        self.per_cell = cells == CELLS  # token 1 + p is cell p (row-major, POSITIONS order)
        out = sum(_CLASSES) if self.per_cell else CELLS * sum(_CLASSES)
        self.head = nn.Linear(2 * d if self.per_cell else (1 + cells) * d, out)
        if where and not self.per_cell:
            raise ValueError(f"the cell head needs one token per grid cell (96² images), not {image_size}²")
        # Which cell a token is, read along unit-norm directions: only a token whose position part is large
        # (not merely decodable) scores well, so the projector keeps position in the token. The attribute
        # head alone, shared by the cells, has the projector project position out.
        self.where = nn.Parameter(torch.randn(CELLS, d) / d**0.5) if where else None

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """Per attribute, logits (B, 9, classes); with the cell head, then its (B, 9 tokens, 9 cells)."""
        feats = self.multi_modal_projector(self.vision_tower(pixel_values).last_hidden_state)
        if self.per_cell:
            cells = feats[:, 1:]
            out = self.head(torch.cat([cells, feats[:, :1].expand_as(cells)], dim=-1))
            if self.where is not None:
                where = cells @ nn.functional.normalize(self.where, dim=-1).T
                return [*out.split(_CLASSES, dim=-1), where]
        else:
            out = self.head(feats.flatten(1)).view(len(pixel_values), CELLS, sum(_CLASSES))
        return list(out.split(_CLASSES, dim=-1))


def _batch(chunk: list[Scene], image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    images = normalise_images(np.stack([render(s, image_size) for s in chunk]))
    return images, torch.from_numpy(attribute_batch(chunk))


def probe_loss(probe: AttributeProbe, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logits = probe(images)
    where_loss: torch.Tensor | float = 0.0
    if probe.where is not None:  # every token, occupied or not, says which cell it is
        where = logits.pop()
        cells = torch.arange(CELLS).expand(len(images), CELLS)
        where_loss = nn.functional.cross_entropy(where.reshape(-1, CELLS), cells.reshape(-1))
    return where_loss + sum(
        w * nn.functional.cross_entropy(lg.reshape(-1, lg.shape[-1]), labels[..., a].reshape(-1))
        for a, (w, lg) in enumerate(zip(ATTRIBUTE_WEIGHTS, logits, strict=True))
    ) / sum(ATTRIBUTE_WEIGHTS)


@torch.no_grad()
def attribute_accuracy(probe: AttributeProbe, held: list[Scene], image_size: int) -> dict[str, float]:
    """Held-out accuracy per attribute on occupied cells, and of "is the cell occupied" on all cells."""
    probe.eval()
    hits = np.zeros(len(ATTRIBUTES))
    occupied_hits, occupied, cells, where_hits = 0, 0, 0, 0
    for i in range(0, len(held), 64):
        images, labels = _batch(held[i : i + 64], image_size)
        logits = probe(images)
        preds = torch.stack([lg.argmax(-1) for lg in logits[: len(_CLASSES)]], dim=-1)  # (B, 9, 4)
        if probe.where is not None:
            where_hits += int((logits[-1].argmax(-1) == torch.arange(CELLS)).sum())
        mask = labels[..., 0] > 0
        hits += ((preds == labels) & mask[..., None]).sum(dim=(0, 1)).numpy()
        occupied += int(mask.sum())
        occupied_hits += int(((preds[..., 0] > 0) == mask).sum())
        cells += mask.numel()
    probe.train()
    out = {name: float(hits[a] / max(occupied, 1)) for a, name in enumerate(ATTRIBUTES)}
    out["occupied"] = occupied_hits / max(cells, 1)
    if probe.where is not None:
        out["cell"] = where_hits / max(cells, 1)
    return out


@torch.no_grad()
def position_share(probe: AttributeProbe, images: torch.Tensor) -> float:
    """Share of the cell tokens' variance that is the cell's identity (between-cell over total variance of
    the projector's output, 0-1): how loudly an image token says where it is, which captions need."""
    cells = probe.multi_modal_projector(probe.vision_tower(images).last_hidden_state)[:, 1:]
    centred = cells - cells.mean(dim=(0, 1))
    return float(centred.mean(0).pow(2).sum(-1).mean() / centred.pow(2).sum(-1).mean())


def _train_probe(probe: AttributeProbe, r: dict[str, Any], out: Path, image_size: int, what: str) -> dict:
    """Train ``probe``'s parameters that require grad on the attribute loss; returns the loop's timing."""
    params = [p for p in probe.parameters() if p.requires_grad]
    stream = scenes(r["seed"], "vision", "train")

    def loss_fn(_step: int) -> torch.Tensor:
        return probe_loss(probe, *_batch([next(stream) for _ in range(r["batch"])], image_size))

    return train_loop(params, loss_fn, r["steps"], r["lr"], r["warmup"], out / "train_log.jsonl", what)


def _heldout(probe: AttributeProbe, r: dict[str, Any], heldout: int, image_size: int, timing: dict) -> dict:
    t0 = time.perf_counter()
    held = heldout_scenes(r["seed"], heldout)
    out: dict[str, Any] = {"attribute_accuracy": attribute_accuracy(probe, held, image_size)}
    if probe.per_cell:
        out["position_share"] = round(position_share(probe, _batch(held, image_size)[0]), 4)
    timing["eval_s"] = round(time.perf_counter() - t0, 2)
    return out | {"heldout_scenes": heldout}


def _save(module: nn.Module, prefixes: tuple[str, ...], path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v for k, v in module.state_dict().items() if k.startswith(prefixes)}
    save_file(tensors_to_cpu(state), str(path))


def train_vision(size: SizeConfig, spec: dict[str, Any], out: Path, heldout: int) -> dict[str, Any]:
    """Stage A for ``size``'s tower and projector together; writes ``out/vision.safetensors``; returns
    held-out numbers + timings."""
    r, image_size = spec["recipe"], spec["image_size"]
    model = build_model(size, seed=r["seed"])
    torch.manual_seed(r["seed"] + 1)  # the tower's and the head's init do not depend on the rest of the size
    fan_in_init(model.vision_tower)
    probe = AttributeProbe(
        model.vision_tower, model.multi_modal_projector, size.encoder.d_model, image_size
    ).requires_grad_(True)
    timing = _train_probe(probe, r, out, image_size, "stage A")
    numbers = _heldout(probe, r, heldout, image_size, timing)
    _save(model, VISION_PREFIXES, out / VISION_FILE)
    return {"heldout": numbers, "timings": {"stage_a": timing}}


def train_tower(vision: VisionConfig, spec: dict[str, Any], out: Path, heldout: int) -> dict[str, Any]:
    """Stage A for a tower shared by sizes of different projection widths: tower + a probe projector of the
    tower's own width; only the tower is kept (``out/tower.safetensors``)."""
    r, image_size = spec["recipe"], spec["image_size"]
    width = vision.embed_dim[-1]
    torch.manual_seed(r["seed"])
    tower, projector = vision_modules(replace(vision, projection_dim=width))
    torch.manual_seed(r["seed"] + 1)
    fan_in_init(tower)
    probe = AttributeProbe(tower, projector, width, image_size)
    timing = _train_probe(probe, r, out, image_size, "stage A (tower)")
    numbers = _heldout(probe, r, heldout, image_size, timing)
    _save(probe, ("vision_tower.",), out / TOWER_FILE)
    return {"heldout": numbers, "timings": {"stage_a": timing}}


@torch.no_grad()
def position_scale_init(tower: nn.Module, projector: nn.Module, images: torch.Tensor) -> None:
    """Start the projector's 2D position embedding at the standard deviation of the tower features it is
    added to: Hugging Face's std 1 is drowned by a trained tower's features (std ~7)."""
    std = float(tower(images).last_hidden_state.std())
    pe = projector.image_position_embed
    for emb in (pe.row_embeddings, pe.column_embeddings):
        nn.init.normal_(emb.weight, std=std)


def train_projector(
    size: SizeConfig, spec: dict[str, Any], tower_dir: Path, out: Path, heldout: int
) -> dict[str, Any]:
    """Stage A for ``size``'s projector on the frozen shared tower of ``tower_dir``; writes
    ``out/vision.safetensors`` (tower + projector, what stage B loads)."""
    from safetensors.torch import load_file

    r, image_size = spec["recipe"], spec["image_size"]
    model = build_model(size, seed=r["seed"])
    _load_exactly(model, load_file(str(tower_dir / TOWER_FILE)), ("vision_tower.",), tower_dir)
    torch.manual_seed(r["seed"] + 1)
    where = bool(r.get("where"))
    if where:
        images, _ = _batch(list(itertools.islice(scenes(r["seed"], "vision", "train"), 64)), image_size)
        position_scale_init(model.vision_tower, model.multi_modal_projector, images)
    probe = AttributeProbe(
        model.vision_tower, model.multi_modal_projector, size.encoder.d_model, image_size, where=where
    )
    probe.requires_grad_(True).vision_tower.requires_grad_(False)
    timing = _train_probe(probe, r, out, image_size, "stage A (projector)")
    numbers = _heldout(probe, r, heldout, image_size, timing)
    _save(model, VISION_PREFIXES, out / VISION_FILE)
    return {"heldout": numbers, "timings": {"stage_a_projector": timing}}


def _load_exactly(model: nn.Module, state: dict, prefixes: tuple[str, ...], directory: Path) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False)
    wanted = [k for k in missing if k.startswith(prefixes)]
    if wanted or unexpected:
        raise ValueError(
            f"stage-A weights in {directory} do not fit: missing {wanted[:3]}, unexpected {unexpected[:3]}"
        )


def load_vision(model: FlorenzModel, directory: Path) -> None:
    """Copy a stage-A tower and projector into ``model`` (every tensor must fit)."""
    from safetensors.torch import load_file

    _load_exactly(model, load_file(str(directory / VISION_FILE)), VISION_PREFIXES, directory)
