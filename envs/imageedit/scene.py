"""Scenes: objects with a kind, colour, size, grid position and material; their text form.

A scene is a grid of :data:`COLUMNS` x :data:`ROWS` cells, at most one object per cell; ``x``
counts columns from the left (0-3) and ``y`` rows from the top (0-2). The text form (what
text-only agents read) lists one object a line, and :func:`parse_scene` reads it back.

Example:
    >>> scene = (SceneObject(0, "apple", "green", "medium", 1, 0, "organic"),)
    >>> describe_objects(scene)
    '- #0 apple: green, medium, organic, at (1, 0)'
    >>> parse_scene(describe_objects(scene)) == scene
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

__all__ = [
    "COLUMNS",
    "CORNERS",
    "ROWS",
    "Scene",
    "SceneObject",
    "describe_objects",
    "describe_scene",
    "empty_cells",
    "parse_scene",
    "scene_key",
]

COLUMNS = 4
ROWS = 3
#: Named cells instructions may use.
CORNERS: dict[str, tuple[int, int]] = {
    "the top-left corner": (0, 0),
    "the top-right corner": (COLUMNS - 1, 0),
    "the bottom-left corner": (0, ROWS - 1),
    "the bottom-right corner": (COLUMNS - 1, ROWS - 1),
}


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene (``id`` is stable under edits; added objects get new ids)."""

    id: int
    kind: str
    colour: str
    size: str
    x: int
    y: int
    material: str

    @property
    def cell(self) -> tuple[int, int]:
        """The object's ``(x, y)`` grid cell."""
        return (self.x, self.y)

    def with_(self, **changes: object) -> SceneObject:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)  # type: ignore[arg-type]


Scene = tuple[SceneObject, ...]


def scene_key(scene: Scene) -> tuple[tuple[str, str, str, int, int, str], ...]:
    """The scene graph without object ids: what an exact scene match compares."""
    return tuple(sorted((o.kind, o.colour, o.size, o.x, o.y, o.material) for o in scene))


def empty_cells(scene: Scene) -> list[tuple[int, int]]:
    """The free cells, row by row."""
    taken = {o.cell for o in scene}
    return [(x, y) for y in range(ROWS) for x in range(COLUMNS) if (x, y) not in taken]


def describe_objects(scene: Scene) -> str:
    """One line per object, by id."""
    return "\n".join(
        f"- #{o.id} {o.kind}: {o.colour}, {o.size}, {o.material}, at ({o.x}, {o.y})"
        for o in sorted(scene, key=lambda o: o.id)
    )


def describe_scene(scene: Scene) -> str:
    """The scene as text-only agents read it: the grid, the objects, the empty cells."""
    free = ", ".join(f"({x}, {y})" for x, y in empty_cells(scene)) or "none"
    return (
        f"A {COLUMNS}x{ROWS} grid of cells; x is the column from the left (0-{COLUMNS - 1}), "
        f"y the row from the top (0-{ROWS - 1}).\nObjects:\n{describe_objects(scene)}\n"
        f"Empty cells: {free}"
    )


_LINE = re.compile(
    r"^- #(?P<id>\d+) (?P<kind>[a-z_]+): (?P<colour>[a-z]+), (?P<size>[a-z]+), "
    r"(?P<material>[a-z]+), at \((?P<x>\d+), (?P<y>\d+)\)$"
)


def parse_scene(text: str) -> Scene:
    """The objects listed in ``text`` (a scene description, or any text holding its lines)."""
    objects = []
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match:
            objects.append(
                SceneObject(
                    int(match["id"]),
                    match["kind"],
                    match["colour"],
                    match["size"],
                    int(match["x"]),
                    int(match["y"]),
                    match["material"],
                )
            )
    return tuple(objects)
