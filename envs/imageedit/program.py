"""Edit programs: JSON operations on scene objects, parsed from model text and applied to scenes.

A program is a JSON list of operations (a single operation object, or ``{"program": [...]}``,
is accepted too), applied in order:

- ``{"op": "recolour", "id": 3, "colour": "red"}`` (``recolor`` / ``color`` also accepted)
- ``{"op": "move", "id": 3, "to": [0, 2]}`` (to an empty cell ``[x, y]``)
- ``{"op": "remove", "id": 3}`` (``delete`` also accepted)
- ``{"op": "resize", "id": 3, "size": "large"}``
- ``{"op": "add", "kind": "umbrella", "colour": "blue", "size": "large", "at": [3, 0]}``
  (``material`` optional: the kind's usual one)

The JSON may sit in prose or a fenced code block: the whole text, then the last fenced block,
then the outermost ``[...]`` and ``{...}`` are tried in turn. Any problem (not JSON, an unknown
op, key, object id, kind or colour, a value out of range, an occupied cell) raises
:class:`ProgramError`, whose message says what was wrong and how to write it.

Example:
    >>> from arenagym.envs.imageedit.scene import SceneObject
    >>> scene = (SceneObject(0, "apple", "green", "medium", 1, 0, "organic"),)
    >>> ops = parse_program('Sure: [{"op": "recolour", "id": 0, "colour": "red"}]')
    >>> result = apply_program(scene, ops)
    >>> result.scene[0].colour, sorted(result.touched)
    ('red', ['#0'])
    >>> try:
    ...     parse_program('[{"op": "paint", "id": 0}]')
    ... except ProgramError as error:
    ...     print(error)
    operation 1: unknown op 'paint'; ops are add, move, recolour, remove, resize
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from arenagym.envs.imageedit.knowledge import COLOURS, KINDS, MATERIALS, SIZES
from arenagym.envs.imageedit.scene import COLUMNS, ROWS, Scene, SceneObject

__all__ = [
    "MAX_OPERATIONS",
    "Applied",
    "Operation",
    "ProgramError",
    "apply_program",
    "parse_program",
]

#: The most operations one program may hold.
MAX_OPERATIONS = 16
_ALIASES = {"recolor": "recolour", "delete": "remove"}
_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {  # op -> (required, optional) keys
    "recolour": (frozenset({"id", "colour"}), frozenset()),
    "move": (frozenset({"id", "to"}), frozenset()),
    "remove": (frozenset({"id"}), frozenset()),
    "resize": (frozenset({"id", "size"}), frozenset()),
    "add": (frozenset({"kind", "colour", "size", "at"}), frozenset({"material"})),
}
_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.DOTALL)


class ProgramError(ValueError):
    """A program that cannot be parsed or applied; the message says how to fix it."""


@dataclass(frozen=True)
class Operation:
    """One parsed operation (fields that the op does not take are ``None``)."""

    op: str
    id: int | None = None
    colour: str | None = None
    size: str | None = None
    cell: tuple[int, int] | None = None
    kind: str | None = None
    material: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The operation as a JSON object, in the documented layout."""
        out: dict[str, Any] = {"op": self.op}
        if self.op == "add":
            out.update(kind=self.kind, colour=self.colour, size=self.size, at=list(self.cell or ()))
            if self.material is not None:
                out["material"] = self.material
            return out
        out["id"] = self.id
        if self.op == "recolour":
            out["colour"] = self.colour
        elif self.op == "resize":
            out["size"] = self.size
        elif self.op == "move":
            out["to"] = list(self.cell or ())
        return out


@dataclass(frozen=True)
class Applied:
    """A program's result: the new scene and what it touched (``#id`` of each existing object
    it changed or removed, ``new:kind`` of each object it added)."""

    scene: Scene
    touched: frozenset[str]


def _candidates(text: str) -> list[str]:
    found = [text.strip()]
    found += reversed(_FENCE.findall(text))
    for open_, close in ("[]", "{}"):
        start, end = text.find(open_), text.rfind(close)
        if 0 <= start < end:
            found.append(text[start : end + 1])
    return found


def _load(text: str) -> Any:
    for candidate in _candidates(text):
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):
            continue
    raise ProgramError(
        "no JSON edit program found; reply with a JSON list of operations such as "
        '[{"op": "recolour", "id": 0, "colour": "red"}]'
    )


def parse_program(text: str) -> list[Operation]:
    """The operations of the program in ``text``; raises :class:`ProgramError`."""
    data = _load(text)
    if isinstance(data, dict) and "op" not in data:
        inner = [data[key] for key in ("program", "ops", "operations", "edits") if key in data]
        data = inner[0] if inner else data
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ProgramError(f"the program must be a JSON list of operations, not {_kind(data)}")
    if not data:
        raise ProgramError("the program is empty; write at least one operation")
    if len(data) > MAX_OPERATIONS:
        raise ProgramError(f"the program has {len(data)} operations, over {MAX_OPERATIONS}")
    return [_operation(item, index) for index, item in enumerate(data, 1)]


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), "a number")


def _operation(item: Any, index: int) -> Operation:
    where = f"operation {index}"
    if not isinstance(item, dict):
        raise ProgramError(f'{where}: each operation is a JSON object like {{"op": ...}}')
    item = {("colour" if key == "color" else key): value for key, value in item.items()}
    op = item.get("op")
    op = _ALIASES.get(op, op) if isinstance(op, str) else op
    if op not in _KEYS:
        raise ProgramError(f"{where}: unknown op {op!r}; ops are {', '.join(sorted(_KEYS))}")
    required, optional = _KEYS[op]
    keys = set(item) - {"op"}
    if missing := sorted(required - keys):
        raise ProgramError(f"{where} ({op}) needs {', '.join(missing)}")
    if extra := sorted(keys - required - optional):
        raise ProgramError(f"{where} ({op}): unknown key(s) {', '.join(map(str, extra))}")
    return Operation(
        op=op,
        id=_object_id(item["id"], where) if "id" in item else None,
        colour=_choice(item, "colour", tuple(COLOURS), where),
        size=_choice(item, "size", SIZES, where),
        cell=_cell(item.get("to", item.get("at")), where),
        kind=_choice(item, "kind", tuple(KINDS), where),
        material=_choice(item, "material", MATERIALS, where),
    )


def _object_id(value: Any, where: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"#?\d{1,6}", value.strip()):
        return int(value.strip().lstrip("#"))
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProgramError(f"{where}: id must be an object's number (like 3), got {value!r:.40}")
    return value


def _choice(item: dict[str, Any], key: str, allowed: tuple[str, ...], where: str) -> str | None:
    if key not in item:
        return None
    value = item[key]
    if not isinstance(value, str) or value.strip().lower() not in allowed:
        raise ProgramError(f"{where}: {key} must be one of {', '.join(allowed)}; got {value!r:.40}")
    return value.strip().lower()


def _cell(value: Any, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ProgramError(f"{where}: a cell is a list [x, y] of two integers, got {value!r:.40}")
    x, y = value
    if not (0 <= x < COLUMNS and 0 <= y < ROWS):
        raise ProgramError(
            f"{where}: cell [{x}, {y}] is off the grid (x 0-{COLUMNS - 1}, y 0-{ROWS - 1})"
        )
    return (x, y)


def apply_program(scene: Scene, operations: list[Operation]) -> Applied:
    """Apply ``operations`` in order; raises :class:`ProgramError` on an unknown object id or an
    occupied cell."""
    objects = {o.id: o for o in scene}
    original = set(objects)
    added: dict[int, str] = {}
    touched: set[str] = set()
    next_id = max(original, default=-1) + 1
    for index, operation in enumerate(operations, 1):
        where = f"operation {index} ({operation.op})"
        if operation.op == "add":
            assert operation.cell is not None and operation.kind is not None
            _check_free(objects, operation.cell, where)
            kind = KINDS[operation.kind]
            objects[next_id] = SceneObject(
                next_id,
                kind.name,
                operation.colour or kind.colours[0],
                operation.size or "medium",
                *operation.cell,
                operation.material or kind.material,
            )
            added[next_id] = kind.name
            touched.add(f"new:{kind.name}")
            next_id += 1
            continue
        assert operation.id is not None
        if operation.id not in objects:
            known = ", ".join(f"#{i}" for i in sorted(objects)) or "none"
            raise ProgramError(f"{where}: there is no object #{operation.id}; objects: {known}")
        current = objects[operation.id]
        if operation.op == "remove":
            del objects[operation.id]
        elif operation.op == "recolour":
            objects[operation.id] = current.with_(colour=operation.colour)
        elif operation.op == "resize":
            objects[operation.id] = current.with_(size=operation.size)
        else:
            assert operation.cell is not None
            if operation.cell != current.cell:
                _check_free(objects, operation.cell, where)
            objects[operation.id] = current.with_(x=operation.cell[0], y=operation.cell[1])
        is_new = operation.id in added
        touched.add(f"new:{added[operation.id]}" if is_new else f"#{operation.id}")
    return Applied(tuple(sorted(objects.values(), key=lambda o: o.id)), frozenset(touched))


def _check_free(objects: dict[int, SceneObject], cell: tuple[int, int], where: str) -> None:
    for other in objects.values():
        if other.cell == cell:
            raise ProgramError(
                f"{where}: cell [{cell[0]}, {cell[1]}] is taken by #{other.id} {other.kind}; "
                "move or remove it first, or pick an empty cell"
            )
