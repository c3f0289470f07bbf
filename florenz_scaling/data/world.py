"""Procedural scenes and their images: 1-3 object groups on a 3×3 grid, drawn with numpy.

A scene is pure data (``Scene``): its objects (shape, colour, size, position, count) plus the rendering
nuisances (background tint, per-copy jitter) that the descriptions do not mention. ``render`` is a pure
function of the scene and the image size, so a scene drawn from a seeded generator is reproducible
everywhere.

Train/held-out split by *content*: ``Scene.key`` is the order-free set of described objects and
``is_heldout_key`` puts a fixed ~10% of keys (by CRC32) in the held-out split. Training never draws a held-out
key and held-out sets draw only those, so no held-out caption or translation source ever occurs in training.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from florenz_scaling.data.language import COLOURS, POSITIONS, SHAPES, SIZES, Obj

RGB = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 225),
    "yellow": (240, 220, 40),
    "purple": (140, 60, 190),
    "orange": (250, 140, 30),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
HELDOUT_MODULUS = 10  # 1 in 10 scene keys is reserved for evaluation
MAX_OBJECTS = 3
MAX_COUNT = 3
# Where the copies of a group sit inside its grid cell, in units of a quarter cell: a group of two on the
# diagonal, three in a triangle, so copies never overlap whatever their size.
_LAYOUT = {1: ((0, 0),), 2: ((-1, -1), (1, 1)), 3: ((-1, -1), (-1, 1), (1, 0))}


@dataclass(frozen=True)
class Scene:
    """Objects in description order, plus nuisances that change pixels but not the description."""

    objects: tuple[Obj, ...]
    framed: bool  # whether the sentence opens with the decoder prefix ("The image shows ...")
    background: tuple[int, int, int]
    jitter: tuple[tuple[tuple[float, float], ...], ...]  # per object, per copy: (dy, dx) in cell fractions

    @property
    def key(self) -> str:
        """Order-free identity of what the scene *says*: equal keys give equal descriptions up to order."""
        return "|".join(sorted(f"{o.shape},{o.colour},{o.size},{o.position},{o.count}" for o in self.objects))


def is_heldout_key(key: str) -> bool:
    """Whether a scene with this content key belongs to the held-out split (stable across processes)."""
    return zlib.crc32(key.encode()) % HELDOUT_MODULUS == 0


def draw_scene(rng: np.random.Generator) -> Scene:
    """Draw any scene (either split); ``sample_scene`` restricts it to one split."""
    # One vector draw instead of many scalar calls: scene generation is on the training hot path.
    n = int(rng.integers(1, MAX_OBJECTS + 1))
    positions = rng.permutation(len(POSITIONS))[:n]
    attrs = rng.random((n, 4))
    jit = rng.uniform(-0.04, 0.04, size=(n, MAX_COUNT, 2))
    tint = rng.integers(95, 160, size=3)
    framed = bool(rng.random() < 0.5)
    objects, jitter = [], []
    for i in range(n):
        count = 1 + int(attrs[i, 3] * MAX_COUNT)
        objects.append(
            Obj(
                SHAPES[int(attrs[i, 0] * len(SHAPES))],
                COLOURS[int(attrs[i, 1] * len(COLOURS))],
                SIZES[int(attrs[i, 2] * len(SIZES))],
                POSITIONS[int(positions[i])],
                count,
            )
        )
        jitter.append(tuple((float(jit[i, c, 0]), float(jit[i, c, 1])) for c in range(count)))
    return Scene(tuple(objects), framed, (int(tint[0]), int(tint[1]), int(tint[2])), tuple(jitter))


def sample_scene(rng: np.random.Generator, split: str) -> Scene:
    """Draw a scene of ``split`` ("train" or "heldout") by rejection on the content key."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    want = split == "heldout"
    while True:
        scene = draw_scene(rng)
        if is_heldout_key(scene.key) == want:
            return scene


@lru_cache(maxsize=512)
def _sprite(shape: str, d: int) -> np.ndarray:
    """Boolean d×d mask of a shape, supersampled 4× so small sprites keep their outline; cached."""
    s = 4 * d
    c = (np.arange(s) + 0.5) / s * 2 - 1  # pixel centres in [-1, 1]
    y, x = np.meshgrid(c, c, indexing="ij")
    if shape == "circle":
        m = x * x + y * y <= 0.95
    elif shape == "square":
        m = (np.abs(x) <= 0.8) & (np.abs(y) <= 0.8)
    elif shape == "triangle":
        m = (y <= 0.85) & (np.abs(x) <= (y + 0.95) / 1.8 * 0.95)
    elif shape == "diamond":
        m = np.abs(x) + np.abs(y) <= 0.98
    elif shape == "cross":
        m = ((np.abs(x) <= 0.3) & (np.abs(y) <= 0.95)) | ((np.abs(y) <= 0.3) & (np.abs(x) <= 0.95))
    elif shape == "star":
        ang = np.arange(10) * np.pi / 5 - np.pi / 2
        rad = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        m = _in_polygon(x, y, rad * np.cos(ang), rad * np.sin(ang))
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return m.reshape(d, 4, d, 4).mean(axis=(1, 3)) >= 0.5


def _in_polygon(x: np.ndarray, y: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Even-odd rule point-in-polygon test, vectorised over the grid."""
    inside = np.zeros(x.shape, dtype=bool)
    for i in range(len(px)):
        x0, y0, x1, y1 = px[i], py[i], px[i - 1], py[i - 1]
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xi = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < xi)
    return inside


def render(scene: Scene, size: int) -> np.ndarray:
    """Draw the scene as an RGB uint8 array of shape (size, size, 3)."""
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = scene.background
    cell = size / 3
    for obj, jitter in zip(scene.objects, scene.jitter, strict=True):
        p = POSITIONS.index(obj.position)
        cy, cx = (p // 3 + 0.5) * cell, (p % 3 + 0.5) * cell
        # "large" must stay large next to "small" whatever the count, so sprite size is absolute per image.
        d = max(3, round(cell * (0.42 if obj.size == "large" else 0.26)))
        mask = _sprite(obj.shape, d)
        for (ly, lx), (jy, jx) in zip(_LAYOUT[obj.count], jitter, strict=True):
            y0 = int(round(cy + (ly * 0.25 + jy) * cell - d / 2))
            x0 = int(round(cx + (lx * 0.25 + jx) * cell - d / 2))
            y0, x0 = min(max(y0, 0), size - d), min(max(x0, 0), size - d)
            img[y0 : y0 + d, x0 : x0 + d][mask] = RGB[obj.colour]
    return img
