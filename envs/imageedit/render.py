"""Rendering scenes to RGB images with Pillow: one simple shape per kind, no model needed.

An image is ``HEIGHT x WIDTH x 3`` ``uint8`` (120 x 160): a light background, a faint grid, and
each object drawn in its cell, filled with its colour (:data:`~.knowledge.COLOURS`), outlined in
its material's colour, at its size. Drawing is not anti-aliased, so renderings are exact and
byte-for-byte deterministic, and a scene edit changes exactly the pixels of the cells it touches.

Example:
    >>> from arenagym.envs.imageedit.scene import SceneObject
    >>> image = render_scene((SceneObject(0, "apple", "red", "large", 1, 0, "organic"),))
    >>> image.shape, image.dtype.name, image[20, 60].tolist()
    ((120, 160, 3), 'uint8', [220, 40, 40])
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from arenagym.envs.imageedit.knowledge import COLOURS, KINDS
from arenagym.envs.imageedit.scene import COLUMNS, ROWS, Scene

__all__ = ["BACKGROUND", "CELL", "HEIGHT", "WIDTH", "render_scene"]

CELL = 40
WIDTH = COLUMNS * CELL
HEIGHT = ROWS * CELL
BACKGROUND = (236, 231, 220)
_GRID = (222, 216, 204)
_RADIUS = {"small": 8, "medium": 12, "large": 17}
_OUTLINE = {
    "organic": (70, 45, 20),
    "wood": (160, 110, 60),
    "metal": (80, 80, 100),
    "glass": (120, 190, 225),
    "plastic": (0, 0, 0),
    "fabric": (120, 50, 120),
    "stone": (60, 60, 60),
}

_Draw = Callable[[ImageDraw.ImageDraw, float, float, float, dict[str, object]], None]


def _box(x: float, y: float, rx: float, ry: float) -> list[float]:
    return [x - rx, y - ry, x + rx, y + ry]


def _poly(
    points: list[tuple[float, float]], x: float, y: float, r: float
) -> list[tuple[float, float]]:
    return [(x + px * r, y + py * r) for px, py in points]


def _circle(d: ImageDraw.ImageDraw, x: float, y: float, r: float, s: dict[str, object]) -> None:
    d.ellipse(_box(x, y, r, r), **s)  # type: ignore[arg-type]


def _shape(points: list[tuple[float, float]]) -> _Draw:
    def draw(d: ImageDraw.ImageDraw, x: float, y: float, r: float, s: dict[str, object]) -> None:
        d.polygon(_poly(points, x, y, r), **s)  # type: ignore[arg-type]

    return draw


def _ellipse(rx: float, ry: float, dy: float = 0.0) -> _Draw:
    def draw(d: ImageDraw.ImageDraw, x: float, y: float, r: float, s: dict[str, object]) -> None:
        d.ellipse(_box(x, y + dy * r, rx * r, ry * r), **s)  # type: ignore[arg-type]

    return draw


def _stack(*parts: _Draw) -> _Draw:
    def draw(d: ImageDraw.ImageDraw, x: float, y: float, r: float, s: dict[str, object]) -> None:
        for part in parts:
            part(d, x, y, r, s)

    return draw


def _offset(part: _Draw, dx: float, dy: float, scale: float) -> _Draw:
    def draw(d: ImageDraw.ImageDraw, x: float, y: float, r: float, s: dict[str, object]) -> None:
        part(d, x + dx * r, y + dy * r, r * scale, s)

    return draw


def _rect(rx: float, ry: float, dy: float = 0.0) -> _Draw:
    return _shape([(-rx, dy - ry), (rx, dy - ry), (rx, dy + ry), (-rx, dy + ry)])


_SHAPES: dict[str, _Draw] = {
    "circle": _circle,
    "disc": _ellipse(0.7, 0.7),
    "ellipse": _ellipse(1.0, 0.65),
    "egg": _ellipse(0.7, 0.95),
    "blob": _shape([(-1, -0.3), (-0.4, -0.9), (0.5, -0.7), (1, 0.1), (0.5, 0.8), (-0.6, 0.7)]),
    "crescent": _shape([(-1, -0.6), (-0.4, 0.5), (0.5, 0.6), (1, -0.6), (0.4, 0.1), (-0.4, 0)]),
    "heart": _shape([(-1, -0.4), (-0.5, -0.9), (0, -0.5), (0.5, -0.9), (1, -0.4), (0, 1)]),
    "pumpkin": _stack(_ellipse(1.0, 0.75, 0.15), _rect(0.12, 0.25, -0.75)),
    "cluster": _stack(
        *(_offset(_circle, dx, dy, 0.38) for dx, dy in ((-0.4, -0.5), (0.4, -0.5), (0, 0.1)))
    ),
    "triangle": _shape([(-0.6, -1), (0.6, -1), (0, 1)]),
    "tree": _stack(_rect(0.2, 0.5, 0.5), _offset(_circle, 0, -0.3, 0.7)),
    "capsule": _stack(
        _rect(0.7, 0.35), _offset(_circle, -0.7, 0, 0.35), _offset(_circle, 0.7, 0, 0.35)
    ),
    "fish": _shape(
        [
            (-1, -0.5),
            (-0.6, 0),
            (-1, 0.5),
            (-0.3, 0.1),
            (0.3, 0.5),
            (1, 0),
            (0.3, -0.5),
            (-0.3, -0.1),
        ]
    ),
    "wedge": _shape([(-1, 0.6), (1, 0.6), (1, -0.6)]),
    "key": _stack(_offset(_circle, -0.6, 0, 0.4), _rect(0.8, 0.12), _rect(0.1, 0.3, 0.25)),
    "cylinder": _rect(0.45, 0.8),
    "square": _rect(0.8, 0.8),
    "snowman": _stack(_offset(_circle, 0, 0.4, 0.6), _offset(_circle, 0, -0.55, 0.4)),
    "candle": _stack(_rect(0.3, 0.75, 0.2), _shape([(0, -1), (0.15, -0.65), (-0.15, -0.65)])),
    "cup": _stack(
        _shape([(-0.7, -0.7), (0.7, -0.7), (0.5, 0.8), (-0.5, 0.8)]), _rect(0.15, 0.3, -0.1)
    ),
    "umbrella": _stack(
        _rect(0.08, 0.5, 0.45), _shape([(-1, 0), (-0.7, -0.7), (0, -1), (0.7, -0.7), (1, 0)])
    ),
    "hat": _stack(_rect(1.0, 0.15, 0.35), _ellipse(0.55, 0.5, -0.1)),
    "mitten": _stack(_rect(0.5, 0.65, 0.2), _offset(_circle, 0.6, -0.1, 0.3)),
    "leaf": _shape([(-1, 0.6), (-0.6, -0.3), (0.2, -0.9), (1, -1), (0.6, 0), (-0.2, 0.7)]),
}


def render_scene(scene: Scene) -> np.ndarray:
    """The scene as a ``(HEIGHT, WIDTH, 3)`` ``uint8`` RGB image (deterministic)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for column in range(1, COLUMNS):
        draw.line([(column * CELL, 0), (column * CELL, HEIGHT)], fill=_GRID)
    for row in range(1, ROWS):
        draw.line([(0, row * CELL), (WIDTH, row * CELL)], fill=_GRID)
    for obj in sorted(scene, key=lambda o: o.id):
        x, y = obj.x * CELL + CELL / 2, obj.y * CELL + CELL / 2
        style = {"fill": COLOURS[obj.colour], "outline": _OUTLINE[obj.material], "width": 2}
        _SHAPES[KINDS[obj.kind].shape](draw, x, y, _RADIUS[obj.size], style)
    return np.asarray(image, dtype=np.uint8).copy()
