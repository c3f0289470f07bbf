"""Scene attributes per grid cell: the supervised targets of the vision tower's pretraining (stage A).

For each of the 9 cells (``POSITIONS`` order) the object group there, as four class indices: colour, shape,
size and count, each with class 0 = "no object in this cell". Pure functions of the scene, so they follow the
world's train/held-out content split exactly as captions do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from florenz_scaling.data.language import COLOURS, POSITIONS, SHAPES, SIZES
from florenz_scaling.data.world import MAX_COUNT, Scene

# Attribute name -> number of classes, "empty" (0) included.
ATTRIBUTES: dict[str, int] = {
    "colour": 1 + len(COLOURS),
    "shape": 1 + len(SHAPES),
    "size": 1 + len(SIZES),
    "count": 1 + MAX_COUNT,
}
CELLS = len(POSITIONS)


def cell_attributes(scene: Scene) -> np.ndarray:
    """int64 array (9, 4): per cell the class of colour, shape, size, count (0 where the cell is empty)."""
    out = np.zeros((CELLS, len(ATTRIBUTES)), dtype=np.int64)
    for o in scene.objects:
        cell = POSITIONS.index(o.position)
        out[cell] = (1 + COLOURS.index(o.colour), 1 + SHAPES.index(o.shape), 1 + SIZES.index(o.size), o.count)
    return out


def attribute_batch(scenes: Sequence[Scene]) -> np.ndarray:
    """int64 array (B, 9, 4) of ``cell_attributes`` for each scene."""
    return np.stack([cell_attributes(s) for s in scenes])


def chance_accuracy() -> dict[str, float]:
    """Accuracy of a uniform guess among the real (non-empty) classes of each attribute, on occupied cells."""
    return {name: 1.0 / (n - 1) for name, n in ATTRIBUTES.items()}
