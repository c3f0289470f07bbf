"""Stage A: the vision tower and projector learn the scene's attributes from pixels.

A linear head on the projector's image tokens predicts, for each of the 9 grid cells, the colour, shape, size
and count of the object there (class 0 = empty); the loss is the mean cross-entropy over cells and
attributes. The head is dropped afterwards: only ``vision_tower.*`` and ``multi_modal_projector.*`` are kept
(``vision.safetensors``), for stage B to start from and freeze.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from florenz_scaling.data.attributes import ATTRIBUTES, CELLS, attribute_batch
from florenz_scaling.data.collate import normalise_images
from florenz_scaling.data.world import Scene, render
from florenz_scaling.model.florenz import FlorenzModel, build_model
from florenz_scaling.pretrain.loop import heldout_scenes, scenes, tensors_to_cpu, train_loop
from florenz_scaling.spec.sizes import SizeConfig

VISION_FILE = "vision.safetensors"
VISION_PREFIXES = ("vision_tower.", "multi_modal_projector.")
_CLASSES = tuple(ATTRIBUTES.values())


class AttributeProbe(nn.Module):
    """Tower → projector → flattened image tokens → one linear layer → per cell, logits of each attribute."""

    def __init__(self, model: FlorenzModel, image_size: int) -> None:
        super().__init__()
        self.vision_tower, self.multi_modal_projector = model.vision_tower, model.multi_modal_projector
        tokens = 1 + (image_size // 32) ** 2
        self.head = nn.Linear(tokens * model.size.encoder.d_model, CELLS * sum(_CLASSES))

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """Per attribute, logits (B, 9, classes)."""
        feats = self.multi_modal_projector(self.vision_tower(pixel_values).last_hidden_state)
        out = self.head(feats.flatten(1)).view(len(pixel_values), CELLS, sum(_CLASSES))
        return list(out.split(_CLASSES, dim=-1))


def _batch(chunk: list[Scene], image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    images = normalise_images(np.stack([render(s, image_size) for s in chunk]))
    return images, torch.from_numpy(attribute_batch(chunk))


def probe_loss(probe: AttributeProbe, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logits = probe(images)
    return sum(
        nn.functional.cross_entropy(lg.reshape(-1, lg.shape[-1]), labels[..., a].reshape(-1))
        for a, lg in enumerate(logits)
    ) / len(logits)


@torch.no_grad()
def attribute_accuracy(probe: AttributeProbe, held: list[Scene], image_size: int) -> dict[str, float]:
    """Held-out accuracy per attribute on occupied cells, and of "is the cell occupied" on all cells."""
    probe.eval()
    hits = np.zeros(len(ATTRIBUTES))
    occupied_hits, occupied, cells = 0, 0, 0
    for i in range(0, len(held), 64):
        images, labels = _batch(held[i : i + 64], image_size)
        preds = torch.stack([lg.argmax(-1) for lg in probe(images)], dim=-1)  # (B, 9, 4)
        mask = labels[..., 0] > 0
        hits += ((preds == labels) & mask[..., None]).sum(dim=(0, 1)).numpy()
        occupied += int(mask.sum())
        occupied_hits += int(((preds[..., 0] > 0) == mask).sum())
        cells += mask.numel()
    probe.train()
    out = {name: float(hits[a] / max(occupied, 1)) for a, name in enumerate(ATTRIBUTES)}
    out["occupied"] = occupied_hits / max(cells, 1)
    return out


def train_vision(size: SizeConfig, spec: dict[str, Any], out: Path, heldout: int) -> dict[str, Any]:
    """Stage A for ``size``'s tower; writes ``out/vision.safetensors``; returns held-out numbers + timings."""
    from safetensors.torch import save_file

    r, image_size = spec["recipe"], spec["image_size"]
    model = build_model(size, seed=r["seed"])  # the tower is built first: its init depends on it alone
    torch.manual_seed(r["seed"] + 1)  # and the head's not on the rest of the size that built it
    probe = AttributeProbe(model, image_size)
    params = list(probe.parameters())
    for p in params:
        p.requires_grad_(True)
    stream = scenes(r["seed"], "vision", "train")

    def loss_fn(_step: int) -> torch.Tensor:
        return probe_loss(probe, *_batch([next(stream) for _ in range(r["batch"])], image_size))

    timing = train_loop(params, loss_fn, r["steps"], r["lr"], r["warmup"], out / "train_log.jsonl", "stage A")
    t0 = time.perf_counter()
    accuracy = attribute_accuracy(probe, heldout_scenes(r["seed"], heldout), image_size)
    timing["eval_s"] = round(time.perf_counter() - t0, 2)
    state = {k: v for k, v in model.state_dict().items() if k.startswith(VISION_PREFIXES)}
    save_file(tensors_to_cpu(state), str(out / VISION_FILE))
    return {
        "heldout": {"attribute_accuracy": accuracy, "heldout_scenes": heldout},
        "timings": {"stage_a": timing},
    }


def load_vision(model: FlorenzModel, directory: Path) -> None:
    """Copy a stage-A tower and projector into ``model`` (every tensor must fit)."""
    from safetensors.torch import load_file

    state = load_file(str(directory / VISION_FILE))
    missing, unexpected = model.load_state_dict(state, strict=False)
    wanted = [k for k in missing if k.startswith(VISION_PREFIXES)]
    if wanted or unexpected:
        raise ValueError(
            f"stage-A weights in {directory} do not fit: missing {wanted[:3]}, unexpected {unexpected[:3]}"
        )
